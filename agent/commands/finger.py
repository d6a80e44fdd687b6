"""``gate-agent finger``: probe, capture, enroll and verify on the fingerprint sensor (for installers).

A USB sensor (``--port fprint://`` or ``fprint://DRIVER``) captures through libfprint and
matches on this terminal: probe, capture (minutiae found) and verify (against a
reference image file: WSQ, JPEG 2000, PNG ...).  Nothing captured is written to disk.

gate-agent finger probe --port fprint://
gate-agent finger verify --port fprint:// --reference enrolled.wsq [--threshold 30]
gate-agent finger probe --port /dev/ttyUSB0 --profile r307
gate-agent finger capture --port /dev/ttyUSB0 --out finger.tpl
gate-agent finger enroll --port /dev/ttyUSB0 --page 7
gate-agent finger verify --port /dev/ttyUSB0 --reference finger.tpl [--image] [--threshold 50]
gate-agent finger identify --port /dev/ttyUSB0
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

HELP = "fingerprint sensor or module: probe | capture | enroll | verify | identify"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["probe", "capture", "enroll", "verify", "identify"])
    parser.add_argument("--port", required=True,
                        help="fprint:// (a USB sensor), or the module's serial device, pty path or socket://host:port")
    parser.add_argument("--profile", default="r307", help="firmware_profiles/<name>.toml (default r307)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a finger")
    parser.add_argument("--page", type=int, help="enroll: library page to store at")
    parser.add_argument("--out", type=Path, help="capture: write the template here")
    parser.add_argument("--reference", type=Path, help="verify: the reference template (or image with --image)")
    parser.add_argument("--image", action="store_true", help="verify: the reference is an image")
    parser.add_argument("--threshold", type=int, help="verify: minimum match score (module 50, host 30)")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    if args.port.startswith("fprint:"):
        return _run_host(args)
    return _run_module(args)


def _print(out: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:<16} {value}")


def _reference_image(path: Path) -> Any:
    """An image file (WSQ, JPEG 2000, PNG, ...) as the matcher's grey image at 500 ppi (its dpi, else 500)."""
    import wsq  # noqa: F401  (registers the WSQ format with Pillow)
    from PIL import Image

    from agent.bio import image

    try:
        with Image.open(path) as img:
            grey = img.convert("L")
            dpi = img.info.get("dpi") or (500, 500)
    except Exception as exc:  # whatever the decoder raises on a bad file
        raise image.ImageError(f"{path}: not a fingerprint image ({type(exc).__name__}: {exc})") from exc
    return image.resample(image.GrayImage(grey.width, grey.height, grey.tobytes()), (round(dpi[0]), round(dpi[1])))


def _run_host(args: argparse.Namespace) -> int:
    """A USB sensor through libfprint; minutiae and matching on the host."""
    from agent.bio.matcher import DEFAULT_THRESHOLD, NbisMatcher
    from agent.bio.sensor import FprintSensor, parse_url
    from agent.card.errors import InputError

    if args.action in ("enroll", "identify"):
        raise InputError(f"{args.action} is for modules with a template library; a USB sensor matches on the host",
                         field="action")  # fmt: skip
    if args.action == "verify" and args.reference is None:
        raise InputError("verify needs --reference IMAGE", field="reference")
    matcher = NbisMatcher()
    url = parse_url(args.port)
    sensor = FprintSensor(url.target, url.socket)
    out: dict[str, Any] = {"action": args.action, "port": args.port, "sensor": sensor.name, "matcher": matcher.name}
    code = 0
    try:
        if args.action != "probe":
            image = sensor.capture(threading.Event(), args.timeout)
            if image is None:
                out["error"] = "no finger placed in time"
                code = 1
            else:
                live = matcher.extract(image)
                out.update(width=image.width, height=image.height, minutiae=len(live.minutiae))
                if args.action == "verify":
                    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
                    score = matcher.compare(live, matcher.extract(_reference_image(args.reference)))
                    out.update(matched=score >= threshold, score=score, threshold=threshold)
                    code = 0 if score >= threshold else 1
    finally:
        sensor.close()
    _print(out, args.json)
    return code


def _run_module(args: argparse.Namespace) -> int:
    from agent.bio.module import FingerprintModule
    from agent.card.errors import InputError
    from agent.profiles import fingerprint_profile

    module = FingerprintModule.open(args.port, fingerprint_profile(args.profile))
    cancel = threading.Event()
    out: dict[str, Any] = {"action": args.action, "port": args.port, "profile": args.profile}
    code = 0
    try:
        module.handshake()
        if args.action == "probe":
            params = module.system_parameters()
            out.update(capacity=params.capacity, security_level=params.security_level, packet_size=params.packet_size,
                       baud=params.baud, templates=module.template_count())  # fmt: skip
        elif args.action == "capture":
            if not module.capture_live(cancel, args.timeout):
                out["error"] = "no finger placed in time"
                code = 1
            else:
                template = module.upload_template(1)
                out["template_bytes"] = len(template)
                if args.out:
                    args.out.write_bytes(template)
                    args.out.chmod(0o600)
        elif args.action == "enroll":
            if args.page is None:
                raise InputError("enroll needs --page", field="page")
            module.enroll(args.page, cancel, args.timeout)
            out["page"] = args.page
        elif args.action == "verify":
            if args.reference is None:
                raise InputError("verify needs --reference FILE", field="reference")
            if not module.capture_live(cancel, args.timeout):
                out["error"] = "no finger placed in time"
                code = 1
            else:
                threshold = 50 if args.threshold is None else args.threshold
                result = module.verify_reference(args.reference.read_bytes(), threshold, image=args.image)
                out.update(matched=result.matched, score=result.score)
                code = 0 if result.matched else 1
        else:
            found = module.identify(cancel, args.timeout)
            out.update(found=found is not None, page=found[0] if found else None, score=found[1] if found else None)
            code = 0 if found else 1
        out["retries"] = module.stats["retries"]
    finally:
        module.close()
    _print(out, args.json)
    return code
