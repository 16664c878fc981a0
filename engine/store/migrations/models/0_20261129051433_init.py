"""Initial schema. aerich writes SQL for one dialect; govflow runs on SQLite and PostgreSQL,
so each migration carries both and picks by the connection's dialect."""

from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True

SQL = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS "departments" (
    "code" VARCHAR(32) NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL
) /* A department; BPMN lanes name one by code or by Chinese name. */;
CREATE TABLE IF NOT EXISTS "process_definitions" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "process_id" VARCHAR(128) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "version" INT NOT NULL,
    "content_hash" VARCHAR(64) NOT NULL,
    "files" TEXT NOT NULL,
    "deployed_by" VARCHAR(64),
    "created_at" TIMESTAMP NOT NULL,
    CONSTRAINT "uid_process_def_process_288127" UNIQUE ("process_id", "content_hash"),
    CONSTRAINT "uid_process_def_process_c4d926" UNIQUE ("process_id", "version")
) /* An immutable, content-hashed version of one process and the files it needs. */;
CREATE INDEX IF NOT EXISTS "idx_process_def_process_874a3c" ON "process_definitions" ("process_id");
CREATE TABLE IF NOT EXISTS "cases" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "case_no" VARCHAR(40) NOT NULL UNIQUE,
    "service" VARCHAR(64) NOT NULL,
    "applicant" VARCHAR(64),
    "status" VARCHAR(16) NOT NULL,
    "state" TEXT NOT NULL,
    "version" INT NOT NULL,
    "error" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "updated_at" TIMESTAMP NOT NULL,
    "completed_at" TIMESTAMP,
    "definition_id" INT NOT NULL REFERENCES "process_definitions" ("id") ON DELETE RESTRICT
) /* A case (办件): one workflow instance and its serialized state. */;
CREATE INDEX IF NOT EXISTS "idx_cases_service_9b2e6c" ON "cases" ("service");
CREATE INDEX IF NOT EXISTS "idx_cases_applica_32705e" ON "cases" ("applicant");
CREATE INDEX IF NOT EXISTS "idx_cases_status_6f59f9" ON "cases" ("status");
CREATE TABLE IF NOT EXISTS "case_events" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(32) NOT NULL,
    "task_id" VARCHAR(36),
    "task_name" VARCHAR(200),
    "actor" VARCHAR(64),
    "department" VARCHAR(32),
    "detail" JSON,
    "published" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "case_id" INT NOT NULL REFERENCES "cases" ("id") ON DELETE CASCADE
) /* The case timeline, and the outbox of BPMN events the workflow sent out. */;
CREATE INDEX IF NOT EXISTS "idx_case_events_case_id_8c9afb" ON "case_events" ("case_id", "id");
CREATE TABLE IF NOT EXISTS "human_tasks" (
    "id" CHAR(36) NOT NULL PRIMARY KEY,
    "task_spec" VARCHAR(128) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "lane" VARCHAR(100),
    "department" VARCHAR(32),
    "form_key" VARCHAR(200),
    "assignee" VARCHAR(64),
    "state" VARCHAR(16) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "due_at" TIMESTAMP,
    "completed_at" TIMESTAMP,
    "completed_by" VARCHAR(64),
    "case_id" INT NOT NULL REFERENCES "cases" ("id") ON DELETE CASCADE
) /* Projection of a ready human task, rewritten at every save; inboxes query this. */;
CREATE INDEX IF NOT EXISTS "idx_human_tasks_departm_78e2e7" ON "human_tasks" ("department", "state", "due_at");
CREATE INDEX IF NOT EXISTS "idx_human_tasks_case_id_b79b05" ON "human_tasks" ("case_id", "state");
CREATE TABLE IF NOT EXISTS "jobs" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "kind" VARCHAR(32) NOT NULL,
    "task_id" VARCHAR(36),
    "due_at" TIMESTAMP NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL,
    "last_error" TEXT,
    "created_at" TIMESTAMP NOT NULL,
    "fired_at" TIMESTAMP,
    "case_id" INT REFERENCES "cases" ("id") ON DELETE CASCADE
) /* A durable job: a timer to fire, a warning to send. Done in the same transaction as */;
CREATE INDEX IF NOT EXISTS "idx_jobs_status_b01092" ON "jobs" ("status", "due_at");
CREATE TABLE IF NOT EXISTS "staff_users" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "username" VARCHAR(64) NOT NULL UNIQUE,
    "name" VARCHAR(100) NOT NULL,
    "password_hash" VARCHAR(255) NOT NULL,
    "departments" JSON NOT NULL,
    "roles" JSON NOT NULL,
    "active" INT NOT NULL,
    "created_at" TIMESTAMP NOT NULL
) /* A staff account (window clerk, officer, supervisor, designer, admin). */;
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSON NOT NULL
);
""",
    "postgres": """
CREATE TABLE IF NOT EXISTS "departments" (
    "code" VARCHAR(32) NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL
);
COMMENT ON TABLE "departments" IS 'A department; BPMN lanes name one by code or by Chinese name.';
CREATE TABLE IF NOT EXISTS "process_definitions" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "process_id" VARCHAR(128) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "version" INT NOT NULL,
    "content_hash" VARCHAR(64) NOT NULL,
    "files" TEXT NOT NULL,
    "deployed_by" VARCHAR(64),
    "created_at" TIMESTAMPTZ NOT NULL,
    CONSTRAINT "uid_process_def_process_288127" UNIQUE ("process_id", "content_hash"),
    CONSTRAINT "uid_process_def_process_c4d926" UNIQUE ("process_id", "version")
);
CREATE INDEX IF NOT EXISTS "idx_process_def_process_874a3c" ON "process_definitions" ("process_id");
COMMENT ON TABLE "process_definitions" IS 'An immutable, content-hashed version of one process and the files it needs.';
CREATE TABLE IF NOT EXISTS "cases" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "case_no" VARCHAR(40) NOT NULL UNIQUE,
    "service" VARCHAR(64) NOT NULL,
    "applicant" VARCHAR(64),
    "status" VARCHAR(16) NOT NULL,
    "state" TEXT NOT NULL,
    "version" INT NOT NULL,
    "error" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "completed_at" TIMESTAMPTZ,
    "definition_id" INT NOT NULL REFERENCES "process_definitions" ("id") ON DELETE RESTRICT
);
CREATE INDEX IF NOT EXISTS "idx_cases_service_9b2e6c" ON "cases" ("service");
CREATE INDEX IF NOT EXISTS "idx_cases_applica_32705e" ON "cases" ("applicant");
CREATE INDEX IF NOT EXISTS "idx_cases_status_6f59f9" ON "cases" ("status");
COMMENT ON TABLE "cases" IS 'A case (办件): one workflow instance and its serialized state.';
CREATE TABLE IF NOT EXISTS "case_events" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "kind" VARCHAR(32) NOT NULL,
    "task_id" VARCHAR(36),
    "task_name" VARCHAR(200),
    "actor" VARCHAR(64),
    "department" VARCHAR(32),
    "detail" JSONB,
    "published" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "case_id" INT NOT NULL REFERENCES "cases" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_case_events_case_id_8c9afb" ON "case_events" ("case_id", "id");
COMMENT ON TABLE "case_events" IS 'The case timeline, and the outbox of BPMN events the workflow sent out.';
CREATE TABLE IF NOT EXISTS "human_tasks" (
    "id" UUID NOT NULL PRIMARY KEY,
    "task_spec" VARCHAR(128) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "lane" VARCHAR(100),
    "department" VARCHAR(32),
    "form_key" VARCHAR(200),
    "assignee" VARCHAR(64),
    "state" VARCHAR(16) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "due_at" TIMESTAMPTZ,
    "completed_at" TIMESTAMPTZ,
    "completed_by" VARCHAR(64),
    "case_id" INT NOT NULL REFERENCES "cases" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_human_tasks_departm_78e2e7" ON "human_tasks" ("department", "state", "due_at");
CREATE INDEX IF NOT EXISTS "idx_human_tasks_case_id_b79b05" ON "human_tasks" ("case_id", "state");
COMMENT ON TABLE "human_tasks" IS 'Projection of a ready human task, rewritten at every save; inboxes query this.';
CREATE TABLE IF NOT EXISTS "jobs" (
    "id" BIGSERIAL NOT NULL PRIMARY KEY,
    "kind" VARCHAR(32) NOT NULL,
    "task_id" VARCHAR(36),
    "due_at" TIMESTAMPTZ NOT NULL,
    "status" VARCHAR(16) NOT NULL,
    "attempts" INT NOT NULL,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "fired_at" TIMESTAMPTZ,
    "case_id" INT REFERENCES "cases" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_jobs_status_b01092" ON "jobs" ("status", "due_at");
COMMENT ON TABLE "jobs" IS 'A durable job: a timer to fire, a warning to send. Done in the same transaction as';
CREATE TABLE IF NOT EXISTS "staff_users" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "username" VARCHAR(64) NOT NULL UNIQUE,
    "name" VARCHAR(100) NOT NULL,
    "password_hash" VARCHAR(255) NOT NULL,
    "departments" JSONB NOT NULL,
    "roles" JSONB NOT NULL,
    "active" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE "staff_users" IS 'A staff account (window clerk, officer, supervisor, designer, admin).';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);
""",
}


async def upgrade(db: BaseDBAsyncClient) -> str:
    return SQL["postgres" if db.capabilities.dialect == "postgres" else "sqlite"]


async def downgrade(db: BaseDBAsyncClient) -> str:
    return ""


MODELS_STATE = (
    "eJztXW1zozgS/isqf8rUZVOJ47zszNVV5W12sjtxphLP3dZOpogMsq0Nllgk4vHt5b+fWo"
    "ABAw4ktgczfElhSS3BI9HqfrpR/m6NuUVssXOGBWm9RX+3GB7DRaJ8G7Ww40SlUCBx39YN"
    "TdVCl+C+kC42pSocYFsQVWQRYbrUkZQzaHqCoDHauvMO2j+TO69DBodv3iLOCJpw92Fg8w"
    "miTEjMTIIwsxCVAgniUmzT/xILqRpJdmAsi5tqMMqGy+v2jt2x+3t9fX+PqECSfJOqE+R4"
    "rsOhf0EIur8nbEgZ2ek7Y7Yz68S9v3/zTlU+Eleoh1UdDD3sWgIRVTK9YxOXSvIWYaQvXC"
    "RHWCKXYAsFEqiLxniqhrOn6n64S1D3H3v6UT1G//KIIfmQyBFx1QN/+aqKKbPINwV88NN5"
    "MAaU2FZiDqkFHehyQ04dXXbJ5HvdEFDsGya3vTGLGjtTOeJs1poyCaVDwoirgIHupevB1D"
    "LPtoMlEM62f6dRE/8WYzIWGWDPhgUC0v4NRGUtw+he94zbi55htFKLJ5SITXxQZHIGC0/d"
    "qtBPP4Rb+Km91znqHO8fdo5VE32bs5KjJ3/oCBhfUMPT7bWedD2W2G+hMY5AhbVmMJ5G9m"
    "yE3WxoYyJz+Kobn8c3RLO6AI/xN8NWr4EcqZ+d3QVo/vvk5uzDyc1WZ/cNDMiVevCVRjeo"
    "aesqADwCWL1Uj9QkZQCOiSwH4LCgCggfdgogfNjJRRiqkggrZW5TE/vvdlGME0IvQjmA8A"
    "cBGXYST5RaxTOJtS3ilusxBiitBeS9wwIg7x3mggxVaZAzNEVPbd35GK9UT0SmzxrW8AI4"
    "exe/96DnsRB/2XEYt65OftcIj6dBzcfr7i9h8xjsZx+vT+fgDoyVElZFTOJ502JZiO9V2r"
    "SI4CSuy90yq3cmsCL9W+vFayp7W2Fj4Ixt71zVSDomOfZbQnIOeysQ3QkvNlCPtMAVuVa+"
    "R7BKFk3N5dXFbe/k6lNifs5PehdQ007MTVi6Na/SZ52g/1z2PiD4if647l5oeLmQQ1ePGL"
    "Xr/dGCe8Ke5MqQnhjYim1nYWmIWmLWPcd64awnJZtZr8qshxjFpj24+9i7zseOTV74ts/J"
    "LmHmN0jzVnui0++3AocyCggYpeiOlNz6zJOKkx9AJw0eMrmPCLQ00u+5S+iQ/UamGvDLgH"
    "DLgDagFj+53CRCnCf63DC8n8JlFZZGL7uLJzNKLr3a1IUCQWkZqL1Rb8HN5ZkCH7DvY/Nh"
    "gl3LyJkE8khg9NQEnAZy73+7ITaW2VZ3jNa9gH5qhHlCLUgsHl6J0QdvjFlP9VNXjP7k/V"
    "dC9Cvvb+zul8YGXj7e5rGXLvE6pqvG7fF8CWZ4qB8JxoaRUi9cTpBl9jYujrQY0dv/fLyl"
    "NyJ+aATMFJsy1QTCH1IVc0/2+TfEB+j001UX+b3qmlnIRKgiaJcOuCyx3+ejG1/85/bVpv"
    "r7tVS445QOf5SIx8/t9v7+UXt3//D4oHN0dHC8O9v901WLzIDTy1/AEkiYdM/HRR7Uw5dh"
    "O8P2tSDikjznfrsAz7nfzuU5oeoptZ1l2rf5+MZE6sAWzSFchEnez2eS91NMsoZL/yiLcS"
    "hUP5Tbu0WCe6pVLs66bi74ZMos0nNB4CkUqB/Ay486WcTBrhyTcrG9pFT9cF6+QraIxNRO"
    "Y/zr7XU3D+NQYp5QoqZE/0M2FUW8sYrhvABXgGIxiT/P128n6SHoYJ7Ed7y+AmpEskw9zm"
    "2CWTb6Cbm5CegrwVXZHKEduF7oT6+vPyagP72cD5B8vjq9uNna0/OgGlGZMPOaqEl9+fMi"
    "UZOYy1WQT41JNEzq80yqGeRVvpJDDdMzNwzcorRpbFElCNOzk9uzk/OLRXzpKsmc88hcym"
    "BzzhPGVD6dExldhdNnI5F3Pr9iY0YEghvQ6a79KTLVQIi7cHk2oqqW6OqsrNlX9vaKxFTo"
    "tox9GravXfbksgzTfFqmrEv7Km+2anpmLv2skDu7t8Cd3fPd2ZRe/z5qKApQZGihRPQiXw"
    "mNoJkxi5Y8r4Q+ufxPYsIvIHmxTmKfIt0Ngm62VQkkuUvCEJZ+/jsS+JG8Q5T1udIMSC0N"
    "VSZHVKS10vK7L8IwJ/3fWY6gpeSU9aqaJ0hov74cD/358+V5CRba86i1AzKr0W+tfw485q"
    "OsR4I/nX+11u+oxHm6uAmrH32xYtPcm3CIWZqwC4XqqOLax0VUXPs4X8VBXdIFrP4W0lrV"
    "0l0DHwpGVxl0w/b1Y+mWtj83hOi67M4I5wF3x8YDmZZBOS5TP4xXEz0Rgg4ZKaUx4jL1g3"
    "k1X+6U+/xs/R+VaO5xup5tb/mf7TSkcj709SWVA3eq5IxHUk0idpUTsZuU+x9vpvulzL15"
    "ucYWed4WaQJxTSCuCcTlMeCQf57BfQdp6fmsd5j5Xijm5rkghpQMHOAC24+LJEcD6kLeM1"
    "JPAV/QQ5EgzNpB5xA7o0wnPQuIpakhmMA+3YpFViBuyUPcMRlmaOvzZhCV6pcniNhGgsMv"
    "BsS57l8gOaFm0Yjel9ghBSE73uRjN/nYVdNrTT72pudjV8BZrNqirpMPUcXTcTJYNkdttx"
    "t8PA6WkoydrI9FczfhuMj6/IfdCjsPyWCdkEbpY1uSUnXQ/s3ZLZWZihoTxuCfvGTO43IN"
    "lVhlM2D99FbFJrNW7FbFsN1wcit9PkoG1ZV5iEo+8eX4zY3oPJKiPBhDdDz2dEfbSEEqCZ"
    "M/jTB8UjU7w5gPdN54MMjsTIABtYnwWSdiZeR8LrnvDBbry+zB/WkOxjBgDD+9M1kfnlr4"
    "tWhCe3PS8gpOWk7OSVE/MSlVv+OAmxTPjUva2pBjUyuvKuIh6JgCL7Fu5+VqSHYvPwat99"
    "gyfMdMoBbwrpvrsIhj82np7Io5sTqwTCtPrmhYpR+EVSrxxV7SeV7COYsbOPt5nvNKj8i7"
    "lXgw+Cy0x5byc6PK7UX+rYBmhqfaFc7v0CIImyb3mERbEwU5nyC1LN2HbeV1DqhJ3G0kPA"
    "f+x4jg6lp1Afn06gpbY8reZH1bvaRem3/+Uy2XFFZWWV8pLlO7D9iXvylX3xVdn6u/ig/i"
    "HCzEhCtlXdZ3SgnWEPH2wUER9//gIN/9h7q8TxAzrIlFB4YlxF51atjLKJfoK/G+R21Jmd"
    "iB8b7Hh+IrOUzM5ZmObf6UzASayVj6ZED26mOG5l94rFsk1Jzp1pzp1vi9r/B7V+nanRCX"
    "mqNWhl8X1Gwvcupw1OY5fy5/nhtPqlqeVG5MJN8AzQ+KNKZnjukJL1UJhIPmNUR3Ja5UEE"
    "0qY0HGRNZvQ36fIMnSrMXvupk9/R/SqhOZ"
)
