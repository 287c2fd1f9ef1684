"""``plantwatch retention show|set|clear|apply``: how long each bucket prefix is kept.

Rules live in ``DIR/retention.toml`` (:mod:`cloud.archive.retention`); a running
``plantwatch up`` applies them once an hour, ``apply`` does it now (``--dry-run`` lists
what would go).
"""

from __future__ import annotations

import argparse
from typing import Any

from cloud.cli.output import Column, print_json, print_line, print_table
from cloud.runtime.layout import DEFAULT_DATA_DIR
from edge.cliargs import add_subcommands, int_range


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = add_subcommands(parser, "action")
    show = sub.add_parser("show", help="the rules (read-only)", description="List the rules.")
    _common(show)
    set_ = sub.add_parser(
        "set",
        help="keep a prefix for DAYS days",
        description="Keep what lies under PREFIX for DAYS days, then delete it.",
    )
    _common(set_)
    set_.add_argument("prefix", help="key prefix of the bucket, e.g. archive/ or input/")
    set_.add_argument(
        "days", type=int_range(1, 36_500, what="whole days 1-36500"), help="days to keep"
    )
    clear = sub.add_parser(
        "clear", help="keep a prefix forever", description="Remove the rule for PREFIX."
    )
    _common(clear)
    clear.add_argument("prefix", help="key prefix whose rule to remove")
    apply = sub.add_parser(
        "apply",
        help="delete what the rules expire now",
        description="Delete every object (and archive partition) the rules expire.",
    )
    _common(apply)
    apply.add_argument("--dry-run", action="store_true", help="only list what would go")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help="data directory of `plantwatch up` (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from cloud.archive import retention
    from cloud.cli.archive import waiting_for_readers
    from cloud.runtime.layout import DataLayout
    from edge.clock import SystemClock
    from edge.errors import NotFoundError

    layout = DataLayout.existing(args.data)
    rules = retention.load_rules(layout.retention_file)
    if args.action == "set":
        kept = [r for r in rules if r.prefix != args.prefix]
        rules = [*kept, retention.RetentionRule(args.prefix, args.days)]
        retention.save_rules(layout.retention_file, rules)
    elif args.action == "clear":
        kept = [r for r in rules if r.prefix != args.prefix]
        if len(kept) == len(rules):
            raise NotFoundError(
                f"retention: no rule for {args.prefix!r} in {layout.retention_file}"
            )
        rules = kept
        retention.save_rules(layout.retention_file, rules)
    if args.action == "apply":
        expired = retention.apply(
            layout.bucket,
            rules,
            SystemClock().now(),
            dry_run=args.dry_run,
            waiting=waiting_for_readers("retention apply"),
        )
        _print_expired(args, expired.to_dict())
        return 0
    rows = [{"prefix": r.prefix, "days": r.days} for r in sorted(rules)]
    if args.json:
        print_json(rows)
    else:
        print_table(
            rows,
            [Column("prefix", "prefix"), Column("days", "days", "right")],
            empty=f"no retention rules in {layout.retention_file}: everything is kept",
        )
    return 0


def _print_expired(args: argparse.Namespace, document: dict[str, Any]) -> None:
    document = {"dry_run": args.dry_run, **document}
    if args.json:
        print_json(document)
        return
    verb = "would delete" if args.dry_run else "deleted"
    for key in document["keys"]:
        print_line(f"{verb} {key}")
    for key in document["skipped"]:
        print_line(f"kept {key}: date is not YYYY-MM-DD")
    print_line(
        f"{verb} {document['objects']} objects and {document['partitions']} archive "
        f"partitions ({document['bytes']:,} bytes)"
    )
