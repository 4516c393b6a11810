# node-gyp build of the libfuse3 binding (hexz_fuse3.c) against Debian's libfuse3-dev, found with
# pkg-config; run by `npm ci` (this directory is an optional `file:` dependency of the project).
{
  "targets": [
    {
      "target_name": "hexz_fuse3",
      "sources": ["hexz_fuse3.c"],
      "cflags": ["<!@(pkg-config --cflags fuse3)", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lm"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
