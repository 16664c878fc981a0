// /verify/ — a counter PC or a phone reads a certificate's QR code (camera or an uploaded picture,
// decoded by jsQR from npm), sends the token to POST /api/v1/certificates/verify — with the
// registered verifier's key (X-Verifier-Key, kept in this browser) or anonymously — and shows the
// answer in large Chinese text: 有效 / 暂停 / 吊销 / 注销 / 过期, with the certificate's public fields.

import jsQR from "jsqr";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "govflow.verify.key";
let scanning = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 3000);
}

function decode(imageData) {
  const found = jsQR(imageData.data, imageData.width, imageData.height, { inversionAttempts: "dontInvert" });
  return found?.data || null;
}

function show(answer, error) {
  const box = $("result");
  box.hidden = false;
  if (error) {
    box.dataset.verdict = "error";
    box.replaceChildren(el("p", { class: "verdict verdict-invalid" }, "无法核验"), el("p", {}, error));
    return;
  }
  const c = answer.certificate;
  box.dataset.verdict = answer.valid ? "valid" : "invalid";
  box.dataset.state = answer.state;
  const rows = [["证照", c.name], ["持证人", `${c.holder_name}（${c.holder_code_masked}）`], ["颁证机构", c.issuer_name],
    ["签发日期", c.issue_date], ["有效期至", c.valid_to || "长期"], ["证照标识", c.identifier],
    ["核验时间", answer.checked_at.replace("T", " ").slice(0, 19)]];
  if (answer.verifier) rows.push(["核验机构", answer.verifier]);
  box.replaceChildren(
    el("p", { class: `verdict ${answer.valid ? "verdict-valid" : "verdict-invalid"}`, id: "verdict" },
      answer.valid ? "有效" : answer.state_label),
    el("p", {}, answer.message),
    el("dl", { class: "kv" }, rows.map(([k, v]) => el("div", { class: "kv-row" }, el("dt", {}, k), el("dd", {}, v)))));
}

async function verify(token) {
  const key = $("verifier-key").value.trim();
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
  const headers = { "Content-Type": "application/json" };
  if (key) headers["X-Verifier-Key"] = key;
  try {
    const res = await fetch("/api/v1/certificates/verify", { method: "POST", headers, body: JSON.stringify({ token }) });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) show(null, body.error?.message || `核验失败（${res.status}）`);
    else show(body);
  } catch {
    show(null, "网络异常，请稍后重试");
  }
}

async function fromFile(file) {
  if (!file) return;
  const bitmap = await createImageBitmap(file);
  const canvas = $("frame");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0);
  const token = decode(ctx.getImageData(0, 0, canvas.width, canvas.height));
  if (!token) {
    show(null, "图片中没有识别到二维码，请重新拍摄或上传");
    return;
  }
  await verify(token);
}

async function camera() {
  if (scanning) return;
  const video = $("camera");
  try {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  } catch {
    toast("无法打开摄像头，请检查浏览器权限，或上传二维码图片");
    return;
  }
  video.hidden = false;
  await video.play();
  scanning = true;
  const canvas = $("frame");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const tick = async () => {
    if (!scanning) return;
    if (video.readyState >= 2) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      ctx.drawImage(video, 0, 0);
      const token = decode(ctx.getImageData(0, 0, canvas.width, canvas.height));
      if (token) {
        scanning = false;
        video.srcObject.getTracks().forEach((t) => t.stop());
        video.hidden = true;
        await verify(token);
        return;
      }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}

$("verifier-key").value = localStorage.getItem(KEY_STORE) || "";
$("btn-camera").addEventListener("click", camera);
$("qr-file").addEventListener("change", (event) => fromFile(event.target.files[0]));
window.govflowVerify = { verify, decode }; // for the browser tests
document.body.dataset.ready = "1";
