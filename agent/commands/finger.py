"""``gate-agent finger``: probe, capture, enroll and verify on the fingerprint module (for installers).

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

HELP = "fingerprint module: probe | capture | enroll | verify | identify"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["probe", "capture", "enroll", "verify", "identify"])
    parser.add_argument("--port", required=True, help="serial device, pty path or socket://host:port")
    parser.add_argument("--profile", default="r307", help="firmware_profiles/<name>.toml (default r307)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for a finger")
    parser.add_argument("--page", type=int, help="enroll: library page to store at")
    parser.add_argument("--out", type=Path, help="capture: write the template here")
    parser.add_argument("--reference", type=Path, help="verify: the reference template (or image with --image)")
    parser.add_argument("--image", action="store_true", help="verify: the reference is an image")
    parser.add_argument("--threshold", type=int, default=50, help="verify: minimum match score")
    parser.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
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
                result = module.verify_reference(args.reference.read_bytes(), args.threshold, image=args.image)
                out.update(matched=result.matched, score=result.score)
                code = 0 if result.matched else 1
        else:
            found = module.identify(cancel, args.timeout)
            out.update(found=found is not None, page=found[0] if found else None, score=found[1] if found else None)
            code = 0 if found else 1
        out["retries"] = module.stats["retries"]
    finally:
        module.close()
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:<16} {value}")
    return code
