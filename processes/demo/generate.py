"""Generate the demo shared data (population, companies, credit blacklist, birth records, staff).

Deterministic (fixed seed, fixed "today" 2026-11-29): running it again rewrites identical CSVs.
The fixed people and companies that tests rely on are listed in README.md; everything else is
random but valid (GB 11643 ID numbers and USCC check digits computed with python-stdnum).

    .venv/bin/python processes/demo/generate.py
"""

from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

import yaml
from stdnum.cn import ric, uscc

HERE = Path(__file__).resolve().parent
TODAY = date(2026, 11, 29)
SEED = 20261129
SH_DISTRICTS = ["310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112", "310113",
                "310114", "310115", "310116", "310117", "310118", "310120", "310151"]
ELSEWHERE = ["110101", "110105", "440106", "440305", "320102", "330106", "510104", "420102", "370102",
             "410105", "350203", "230103", "210102", "610113"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁沈任姚卢傅钟姜崔谭陆汪范金石廖贾夏韦方"
GIVEN = {  # by generation and gender
    ("old", "M"): ["建国", "国强", "志明", "德华", "福生", "永康", "振华", "文斌", "海生", "根宝", "金龙", "荣"],
    ("old", "F"): ["秀英", "桂兰", "玉珍", "凤英", "淑芬", "美玲", "月娥", "素珍", "彩凤", "丽华", "菊", "敏"],
    ("mid", "M"): ["伟", "强", "磊", "军", "勇", "涛", "斌", "浩", "健", "晓东", "志刚", "海峰", "俊杰"],
    ("mid", "F"): ["娜", "静", "丽", "艳", "敏", "燕", "婷", "洁", "雪梅", "晓燕", "慧", "佳", "文静"],
    ("young", "M"): ["子轩", "浩然", "宇航", "俊熙", "梓豪", "一鸣", "泽宇", "博文", "奕辰", "天佑", "睿"],
    ("young", "F"): ["梓涵", "欣怡", "诗涵", "雨桐", "语嫣", "子萱", "可馨", "思彤", "一诺", "若汐", "悦"],
}
PHONE_PREFIXES = ["133", "135", "136", "137", "138", "139", "150", "151", "153", "158", "177", "180", "186",
                  "187", "188", "189", "199"]
HOSPITALS = [("上海市第一妇婴保健院", "310115"), ("复旦大学附属妇产科医院", "310101"),
             ("上海市国际和平妇幼保健院", "310104"), ("上海交通大学医学院附属仁济医院", "310115"),
             ("上海市长宁区妇幼保健院", "310105")]
POP_COLUMNS = ["id_number", "name", "birth_date", "gender", "phone", "region_code", "household_region"]

# key: (name, gender, birth date, ID region, sequence, household region, residence region, phone)
FIXED_PEOPLE = {
    "local_65": ("王建国", "M", date(1961, 3, 15), "310104", 13, "310104", "310104", "13816612345"),
    "local_40": ("李娜", "F", date(1986, 6, 20), "310110", 24, "310115", "310115", "13917724680"),
    "nonlocal_70": ("张卫东", "M", date(1956, 5, 10), "110101", 35, "110101", "310112", "13601015566"),
    "local_59": ("陈美华", "F", date(1966, 12, 5), "310106", 46, "310106", "310106", "13764418899"),
    "local_60_today": ("孙秀英", "F", date(1966, 11, 29), "310109", 58, "310109", "310109", "13585527711"),
    "local_95": ("吴桂兰", "F", date(1931, 8, 8), "310101", 62, "310101", "310101", ""),
    "mother": ("刘婷", "F", date(1995, 4, 12), "310112", 82, "310112", "310112", "18621034567"),
    "father": ("周杰", "M", date(1993, 9, 8), "320102", 71, "310112", "310112", "18817765432"),
    "blacklisted": ("赵强", "M", date(1981, 7, 1), "310107", 93, "310107", "310107", "13918873310"),
    "single_mother": ("黄丽", "F", date(1998, 2, 14), "440106", 104, "440106", "310115", "15013579246"),
}
NOT_IN_REGISTRY = ("310101", date(1980, 1, 1), 1)  # documented in README only
FIXED_COMPANIES = [  # (key, name, legal representative, capital (10k CNY), established, region, status)
    ("media", "上海东方明珠文化传媒有限公司", "王建国", 500, date(2012, 5, 18), "310115", "存续"),
    ("cancelled", "上海旧日贸易有限公司", "张卫东", 50, date(2003, 9, 1), "310106", "注销"),
    ("blacklisted", "上海鑫达建材有限公司", "赵强", 1000, date(2015, 3, 9), "310112", "存续"),
]
TRADE_NAMES = ["华信", "申通达", "浦江", "金桥", "新航", "锦程", "恒泰", "博远", "瑞丰", "启明", "正阳", "海纳",
               "蓝鲸", "云帆", "安和", "星河", "同舟", "嘉禾", "润泽", "天衡"]
INDUSTRIES = ["信息科技", "餐饮管理", "国际贸易", "建筑工程", "物流", "生物医药", "教育咨询", "物业管理",
              "电子商务", "文化传播", "智能制造", "新能源科技"]
FORMS = ["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司"]


def id_number(region: str, born: date, seq: int, gender: str) -> str:
    """GB 11643: region(6) + birth date(8) + sequence(3, odd for men) + mod-11 check digit."""
    seq = seq * 2 + (1 if gender == "M" else 0)
    body = f"{region}{born:%Y%m%d}{seq % 1000:03d}"
    number = body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check digit
    return ric.validate(number)


def age(born: date) -> int:
    return TODAY.year - born.year - ((TODAY.month, TODAY.day) < (born.month, born.day))


def org_code(rng: random.Random) -> str:
    """GB 11714 organisation code: 8 digits + check character."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    total = sum(int(c) * w for c, w in zip(body, [3, 7, 9, 10, 5, 8, 4, 2], strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(rng: random.Random, region: str) -> str:
    body = "91" + region + org_code(rng)
    return uscc.validate(body + uscc.calc_check_digit(body))


class Generator:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.people: list[dict[str, str]] = []
        self.used_ids: set[str] = set()

    def add(self, number: str, name: str, gender: str, born: date, household: str, residence: str,
            phone: str) -> dict[str, str]:
        assert number not in self.used_ids
        self.used_ids.add(number)
        row = {"id_number": number, "name": name, "birth_date": born.isoformat(),
               "gender": "男" if gender == "M" else "女", "phone": phone,
               "region_code": residence, "household_region": household}
        self.people.append(row)
        return row

    def random_person(self, born: date, gender: str | None = None) -> dict[str, str]:
        rng = self.rng
        gender = gender or rng.choice("MF")
        generation = "old" if born.year < 1970 else "mid" if born.year < 2000 else "young"
        name = rng.choice(SURNAMES) + rng.choice(GIVEN[(generation, gender)])
        local = rng.random() < 0.75
        if local:
            household = rng.choice(SH_DISTRICTS)
            candidates = SH_DISTRICTS if rng.random() < 0.8 else ELSEWHERE
            residence = household if rng.random() < 0.85 else rng.choice(SH_DISTRICTS)
        else:
            candidates = ELSEWHERE
            household = ""
            residence = ""
        phone = "" if age(born) < 14 else rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        while True:  # the ID region must have existed in the birth year (stdnum checks it)
            region = rng.choice(candidates)
            try:
                number = id_number(region, born, rng.randrange(500), gender)
            except ric.ValidationError:
                continue
            if number not in self.used_ids:
                break
        if not local:
            household = region
            residence = rng.choice(SH_DISTRICTS) if rng.random() < 0.5 else region
        return self.add(number, name, gender, born, household, residence, phone)

    def born_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def aged(self, low: int, high: int) -> date:
        """A birth date giving an age in [low, high] on TODAY."""
        start = date(TODAY.year - high - 1, TODAY.month, TODAY.day) + timedelta(days=1)
        return self.born_between(start, date(TODAY.year - low, TODAY.month, TODAY.day))

    def population(self) -> dict[str, dict[str, str]]:
        fixed = {}
        for key, (name, gender, born, id_region, seq, household, residence, phone) in FIXED_PEOPLE.items():
            number = id_number(id_region, born, seq, gender)
            fixed[key] = self.add(number, name, gender, born, household, residence, phone)
        buckets = [(0, 17, 4), (18, 24, 4), (25, 35, 12), (36, 50, 7), (51, 58, 5), (60, 69, 8),
                   (70, 79, 6), (80, 89, 4), (90, 95, 2)]
        for low, high, count in buckets:
            for _ in range(count):
                self.random_person(self.aged(low, high))
        for _ in range(3):  # exactly 40
            self.random_person(self.aged(40, 40))
        for _ in range(3):  # 59, 60th birthday in the weeks after TODAY
            self.random_person(self.born_between(date(1966, 11, 30), date(1967, 1, 31)))
        return fixed

    def birth_records(self, fixed: dict[str, dict[str, str]]) -> list[dict[str, str]]:
        rng = self.rng
        records = [
            self._birth("Q312600001", "周小雨", "女", date(2026, 11, 20), "08:35", HOSPITALS[0],
                        fixed["mother"], fixed["father"], 3250),
            self._birth("Q312600002", "黄小宝", "男", date(2026, 11, 25), "23:10", HOSPITALS[3],
                        fixed["single_mother"], None, 3480),
        ]
        taken = {fixed["mother"]["id_number"], fixed["father"]["id_number"], fixed["single_mother"]["id_number"]}
        mothers = [p for p in self.people if p["gender"] == "女" and 25 <= age(date.fromisoformat(p["birth_date"])) <= 38
                   and p["id_number"] not in taken]
        fathers = [p for p in self.people if p["gender"] == "男" and 25 <= age(date.fromisoformat(p["birth_date"])) <= 42
                   and p["id_number"] not in taken]
        for serial, (mother, father) in enumerate(zip(mothers, fathers, strict=False), start=3):
            gender = rng.choice("MF")
            baby = father["name"][0] + rng.choice(GIVEN[("young", gender)])
            born = self.born_between(date(2025, 6, 1), date(2026, 11, 28))
            records.append(self._birth(f"Q31{born:%y}{serial:05d}", baby, "男" if gender == "M" else "女", born,
                                       f"{rng.randrange(24):02d}:{rng.randrange(60):02d}", rng.choice(HOSPITALS),
                                       mother, father, rng.randrange(2600, 4200, 10)))
        return records

    @staticmethod
    def _birth(cert: str, baby: str, gender: str, born: date, time: str, hospital: tuple[str, str],
               mother: dict[str, str], father: dict[str, str] | None, weight: int) -> dict[str, str]:
        return {"certificate_no": cert, "baby_name": baby, "gender": gender, "birth_date": born.isoformat(),
                "birth_time": time, "birth_weight_g": str(weight), "hospital": hospital[0],
                "hospital_region": hospital[1], "mother_id_number": mother["id_number"], "mother_name": mother["name"],
                "father_id_number": father["id_number"] if father else "", "father_name": father["name"] if father else ""}

    def companies(self) -> list[dict[str, str]]:
        rng = self.rng
        rows = [{"uscc": make_uscc(rng, region), "name": name, "legal_representative": rep,
                 "registered_capital_wan": str(capital), "established_date": est.isoformat(),
                 "region_code": region, "status": status}
                for _key, name, rep, capital, est, region, status in FIXED_COMPANIES]
        names = {r["name"] for r in rows}
        while len(rows) < 24:
            name = "上海" + rng.choice(TRADE_NAMES) + rng.choice(INDUSTRIES) + rng.choice(FORMS)
            if name in names or "云帆信息科技" in name:  # 上海云帆信息科技有限公司 stays free (README)
                continue
            names.add(name)
            region = rng.choice(SH_DISTRICTS)
            rows.append({"uscc": make_uscc(rng, region), "name": name,
                         "legal_representative": rng.choice(self.people)["name"],
                         "registered_capital_wan": str(rng.choice([10, 50, 100, 200, 500, 1000, 3000])),
                         "established_date": self.born_between(date(1998, 1, 1), date(2026, 10, 31)).isoformat(),
                         "region_code": region, "status": "注销" if rng.random() < 0.1 else "存续"})
        return rows

    def blacklist(self, fixed: dict[str, dict[str, str]], companies: list[dict[str, str]]) -> list[dict[str, str]]:
        court = "上海市第一中级人民法院"
        rows = [{"subject": fixed["blacklisted"]["id_number"], "subject_type": "person", "name": "赵强",
                 "reason": "有履行能力而拒不履行生效法律文书确定义务", "authority": court, "listed_date": "2025-08-18"},
                {"subject": companies[2]["uscc"], "subject_type": "company", "name": companies[2]["name"],
                 "reason": "拖欠农民工工资被列入失信联合惩戒名单", "authority": "上海市人力资源和社会保障局",
                 "listed_date": "2026-03-02"}]
        adults = [p for p in self.people[len(FIXED_PEOPLE):] if age(date.fromisoformat(p["birth_date"])) >= 25]
        for person in self.rng.sample(adults, 2):
            rows.append({"subject": person["id_number"], "subject_type": "person", "name": person["name"],
                         "reason": "违反财产报告制度", "authority": "上海市浦东新区人民法院",
                         "listed_date": self.born_between(date(2024, 1, 1), date(2026, 10, 31)).isoformat()})
        for company in self.rng.sample(companies[3:], 2):
            rows.append({"subject": company["uscc"], "subject_type": "company", "name": company["name"],
                         "reason": "未按规定履行纳税义务（重大税收违法失信主体）", "authority": "国家税务总局上海市税务局",
                         "listed_date": self.born_between(date(2024, 1, 1), date(2026, 10, 31)).isoformat()})
        return rows

    def staff(self) -> list[dict[str, str]]:
        rng = random.Random(SEED + 1)
        departments = [d["code"] for d in yaml.safe_load((HERE.parent / "departments.yaml").read_text("utf-8"))]

        def person() -> str:
            return rng.choice(SURNAMES) + rng.choice(GIVEN[("mid", rng.choice("MF"))])

        rows = [("clerk01", "王窗口", "window", "clerk"), ("clerk02", person(), "window", "clerk"),
                ("window01", person(), "window", "officer"), ("window_sup", person(), "window|supervisor", "supervisor"),
                ("mca01", "李民政", "mca", "officer"), ("mca02", "赵民政", "mca", "officer"),
                ("mca_sup", "周督办", "mca|supervisor", "supervisor")]
        for code in departments:
            if code in {"window", "mca"}:
                continue
            sup_depts = code if code == "supervisor" else f"{code}|supervisor"
            rows += [(f"{code}01", person(), code, "officer"), (f"{code}_sup", person(), sup_depts, "supervisor")]
        rows += [("designer01", "陈设计", "window", "designer"), ("admin", "系统管理员", "window", "admin")]
        return [dict(zip(["username", "name", "departments", "roles"], r, strict=True)) for r in rows]


def write(name: str, rows: list[dict[str, str]], columns: list[str] | None = None) -> None:
    with (HERE / name).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{name}: {len(rows)} rows")


def main() -> None:
    gen = Generator()
    fixed = gen.population()
    companies = gen.companies()
    births = gen.birth_records(fixed)
    write("population.csv", gen.people, POP_COLUMNS)
    write("companies.csv", companies)
    write("credit_blacklist.csv", gen.blacklist(fixed, companies))
    write("birth_records.csv", births)
    write("staff.csv", gen.staff())
    absent = id_number(NOT_IN_REGISTRY[0], NOT_IN_REGISTRY[1], NOT_IN_REGISTRY[2], "M")
    assert absent not in gen.used_ids
    for key, row in fixed.items():
        print(f"  {key:15} {row['id_number']} {row['name']} age {age(date.fromisoformat(row['birth_date']))}")
    print(f"  not_in_registry {absent}")
    for row in companies[:3]:
        print(f"  company {row['uscc']} {row['name']} {row['status']}")


if __name__ == "__main__":
    main()
