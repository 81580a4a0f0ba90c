"""Deprecated name of ``python -m audiocraft_mmd.study independence``; kept for one release."""

import sys

from .study import independence


def main(argv=None) -> int:
    print("audiocraft_mmd.independence_report is deprecated: use `python -m audiocraft_mmd.study independence`",
          file=sys.stderr)
    return independence.main(argv)


if __name__ == "__main__":
    sys.exit(main())
