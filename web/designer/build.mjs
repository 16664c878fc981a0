// Bundles the designer page (src/) with esbuild into static/, and ECharts for the console's 统计
// page (src/charts.js) into ../console/static/build/ (both ignored by git; `make` rebuilds them
// from package-lock.json). The shared page modules under /shared/static/ stay separate files that
// the browser loads, as the other pages do. Usage: node build.mjs
import { build } from "esbuild";
import { writeFileSync } from "node:fs";

await build({
  // verify: the /verify/ page's QR reader (jsQR), bundled here so one npm lock builds both pages
  entryPoints: { designer: "src/main.js", verify: "src/verify.js" },
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  external: ["/shared/static/*"],
  loader: { ".svg": "file", ".woff": "file", ".woff2": "file", ".ttf": "file", ".eot": "file" },
  assetNames: "fonts/[name]-[hash]",
  outdir: "static",
  logLevel: "warning",
});
await build({
  entryPoints: { charts: "src/charts.js" },
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "linked",
  outdir: "../console/static/build",
  logLevel: "warning",
});
writeFileSync("static/.built", `${new Date().toISOString()}\n`);
