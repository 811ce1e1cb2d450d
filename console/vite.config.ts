import { defineConfig } from "vite";

// Relative asset URLs under console/: the same build works at `/` of `whet serve` and at the
// root of the aws bucket, and no asset path can collide with an API route (/api, /v1).
export default defineConfig({
  base: "./",
  build: {
    outDir: "../whetstone/console_assets",
    emptyOutDir: true,
    assetsDir: "console",
    sourcemap: false,
  },
});
