"""``python -m bench NAME [args]``: run ``bench/NAME.py``'s ``main``; no NAME lists them."""

import importlib
import pkgutil
import sys
from pathlib import Path

from bench import django_setup


def main() -> int:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.ispkg
        and not m.name.startswith("_")
        and "def main(" in (Path(__file__).parent / f"{m.name}.py").read_text()
    )
    if len(sys.argv) < 2 or sys.argv[1] not in names:
        print(f"usage: python -m bench NAME [args]; NAME one of: {', '.join(names)}")
        return 2
    django_setup()
    return importlib.import_module(f"bench.{sys.argv[1]}").main(sys.argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main())
