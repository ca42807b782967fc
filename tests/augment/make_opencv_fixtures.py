#!/usr/bin/python3
# Writes tests/fixtures/augment/*.txt: small inputs and what OpenCV (Debian python3-opencv, 4.6) and the
# albumentations 0.3.0 formulas (re-typed here in numpy) produce for them. The C++ tests compare the CPU
# reference against these files, so nothing they check was computed by the code under test.
# Run from the repository root: /usr/bin/python3 tests/augment/make_opencv_fixtures.py
# File format: a line "rows cols channels", then the values row-major (HWC), whitespace separated;
# a first line starting with "#" carries the parameters of the case.
import os

import cv2
import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "augment")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20190701)


def write(name, arr, params=""):
    arr = np.asarray(arr)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        if params:
            f.write("# " + params + "\n")
        f.write(f"{h} {w} {c}\n")
        flat = arr.reshape(h, w * c)
        for row in flat:
            f.write(" ".join(str(int(v)) for v in row) + "\n")


# Inputs: uniform noise (geometry, blurs) and a smooth image with structure (CLAHE, photometric).
noise = rng.integers(0, 256, (29, 37), dtype=np.uint8)
yy, xx = np.mgrid[0:29, 0:37]
smooth = np.clip(90 + 60 * np.sin(xx / 6.0) * np.cos(yy / 5.0) + rng.normal(0, 12, (29, 37)), 0, 255).astype(np.uint8)
write("noise", noise)
write("smooth", smooth)
mask = np.zeros((29, 37), np.uint8)
cv2.circle(mask, (20, 12), 7, 255, -1)
write("mask", mask)

# Resize (albumentations Resize -> cv2.resize, INTER_LINEAR for the image, INTER_NEAREST for the mask).
for h, w in [(23, 31), (48, 64), (29, 16)]:
    write(f"resize_linear_{h}x{w}", cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR))
    write(f"resize_nearest_{h}x{w}", cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST))

# ShiftScaleRotate: getRotationMatrix2D((w/2, h/2), angle, scale) + shift in pixels, warpAffine constant 0.
ssr = [(0.0, 1.0, 0.0, 0.0), (13.7, 1.13, 0.071, -0.12), (-19.2, 0.83, -0.18, 0.15), (4.4, 1.0, 0.2, 0.0)]
for i, (angle, scale, dx, dy) in enumerate(ssr):
    h, w = noise.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    M[0, 2] += dx * w
    M[1, 2] += dy * h
    p = f"angle {angle!r} scale {scale!r} dx {dx!r} dy {dy!r}"
    write(f"ssr_linear_{i}", cv2.warpAffine(noise, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT), p)
    write(f"ssr_nearest_{i}", cv2.warpAffine(mask, M, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT), p)

# CLAHE on a gray image and, as albumentations 0.3 does for 3-channel input, on the Lab lightness.
for clip in (4.0, 1.7):
    write(f"clahe_gray_{clip}", cv2.createCLAHE(clipLimit=clip, tileGridSize=(4, 4)).apply(smooth), f"clip {clip!r}")
    rgb = np.dstack([smooth, smooth, smooth])
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=clip, tileGridSize=(4, 4)).apply(lab[:, :, 0])
    write(f"clahe_lab_{clip}", cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), f"clip {clip!r}")
# The two 8-bit Lab conversions for gray: L of RGB(v, v, v), and RGB of Lab(L, 128, 128).
v = np.arange(256, dtype=np.uint8)
write("lab_lightness_of_gray", cv2.cvtColor(np.dstack([v, v, v]).reshape(1, 256, 3), cv2.COLOR_RGB2LAB)[0, :, 0])
lab_gray = np.dstack([v, np.full(256, 128, np.uint8), np.full(256, 128, np.uint8)]).reshape(1, 256, 3)
write("lab_gray_to_rgb", cv2.cvtColor(lab_gray, cv2.COLOR_LAB2RGB))
# A hand-checkable case: 8x8, two tiles across and down, no clipping (clip 0).
tiny = (np.arange(64).reshape(8, 8) * 3).astype(np.uint8)
write("tiny", tiny)
write("clahe_tiny_noclip", cv2.createCLAHE(clipLimit=0.0, tileGridSize=(2, 2)).apply(tiny), "clip 0.0")

# Blurs: cv2.blur 3x3, cv2.medianBlur 3, and every 3x3 MotionBlur line kernel with its filter2D output.
write("blur3", cv2.blur(noise, (3, 3)))
write("median3", cv2.medianBlur(noise, 3))
kernels = []
for xs in range(3):
    for xe in range(3):
        for ys in range(3):
            for ye in range(3):
                k = np.zeros((3, 3), np.uint8)
                cv2.line(k, (xs, ys), (xe, ye), 1, thickness=1)
                kernels.append([xs, ys, xe, ye] + k.reshape(-1).tolist())
write("motion_kernels_3", np.array(kernels))
for i, (xs, ys, xe, ye) in enumerate([(0, 0, 2, 1), (1, 0, 1, 2), (2, 2, 0, 0)]):
    k = np.zeros((3, 3), np.uint8)
    cv2.line(k, (xs, ys), (xe, ye), 1, thickness=1)
    write(f"motion_{i}", cv2.filter2D(noise, -1, k / np.sum(k)), f"line {xs} {ys} {xe} {ye}")

# albumentations 0.3.0 photometric formulas, re-typed in numpy.
for gamma in (0.6, 0.87, 1.0, 1.2):
    inv = 1.0 / gamma
    table = np.array([((i / 255.0) ** inv) * 255 for i in np.arange(0, 256)]).astype("uint8")
    write(f"gamma_lut_{gamma}", table, f"gamma {gamma!r}")
for alpha, beta in [(1.13, -0.07), (0.81, 0.19), (1.2, 0.2)]:
    mean = np.mean(smooth)
    lut = np.arange(0, 256).astype("float32")
    lut *= alpha
    lut += beta * mean
    lut = np.clip(lut, 0, 255).astype(np.uint8)
    write(f"bc_lut_{alpha}_{beta}", cv2.LUT(smooth, lut), f"alpha {alpha!r} beta {beta!r}")
print("fixtures written to", os.path.normpath(OUT))
