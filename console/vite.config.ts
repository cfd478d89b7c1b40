import { defineConfig } from "vite";

// The built files are committed (console/dist) and embedded in the ferrokms binary by
// crates/ferrokms-server/build.rs; the same sources and lockfile give the same bytes.
export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // The CSP allows no inline script: no preload polyfill, no inlined assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 2048,
  },
});
