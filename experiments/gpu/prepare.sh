#!/usr/bin/env bash
# Here, from the repository root: the wheels the GPU machine lacks (see README.md in this folder).
set -euo pipefail
grep -qxF '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
rm -rf .whl .gpuwheels && mkdir -p .whl .gpuwheels/warp
get() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
          --platform manylinux2014_x86_64 --platform any -d "$1" "$2"; }
for p in brax==0.14.2 mujoco==4.0.1 mujoco-core==4.0.1 mujoco-mjx==3.17.0 jaxopt==0.8.5 trimesh==5.2.0 \
         glfw==2.11.0 ml-collections==1.1.0 tensorboardx==2.6.5 pyopengl==3.1.10; do get .whl "$p"; done
get .gpuwheels/warp warp-lang==1.19.0
(cd .gpuwheels/warp && unzip -q warp_lang-*.whl && rm -rf warp_lang-*.whl warp/examples warp/bin/warp-clang.so \
   && tar cf - . | xz -T0 -6 | split -b 28M - ../wp_)
rm -rf .gpuwheels/warp
for f in .gpuwheels/wp_*; do d=.gpuwheels/${f##*_}; mkdir -p "$d"; mv "$f" "$d/"; done
du -sh .whl .gpuwheels/*
