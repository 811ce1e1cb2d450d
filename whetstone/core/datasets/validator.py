"""The streaming validator: one pass, bounded memory, one report.

Memory bound: the reader holds one line (or one Parquet batch of 1024 rows);
the statistics are fixed-size (a token histogram of ~12k counters); duplicate
detection keeps at most `max_tracked_digests` (default 2^19) 64-bit digests in
each of two sets (exact, near), about 35 MB per full set. When a dataset
outgrows it, the sets switch to hash-based adaptive sampling (only digests
whose low `level` bits are zero are kept) and the duplicate counts become
estimates (`sample_rate` < 1). Class counts keep at most `MAX_TRACKED_LABELS`
labels, of which the report lists the `MAX_LISTED_LABELS` most frequent; listed
issues are capped by `max_listed_issues` (per-code counts stay exact).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from whetstone.core.datasets.normalize import Normalized
from whetstone.core.datasets.options import (
    DUPLICATE_WARNING_SHARE,
    IMBALANCE_WARNING_RATIO,
    ValidationOptions,
)
from whetstone.core.datasets.preference import method_mismatch
from whetstone.core.datasets.records import ExampleKind
from whetstone.core.datasets.report import (
    ClassBalance,
    DatasetStats,
    DuplicateStats,
    HistogramBin,
    Issue,
    IssueCode,
    TokenStats,
    ValidationReport,
)
from whetstone.core.datasets.tokens import BYTES_PER_TOKEN, ExactTokenCounter
from whetstone.core.datasets.walk import DatasetWalk

WARNING_CODES = frozenset(
    {
        IssueCode.BOM,
        IssueCode.BLANK_LINE,
        IssueCode.FEW_EXAMPLES,
        IssueCode.DUPLICATES,
        IssueCode.NEAR_DUPLICATES,
        IssueCode.TRUNCATION,
        IssueCode.CLASS_IMBALANCE,
    }
)
# Problems with the file as a whole: once one is reported, counting examples says nothing new.
FILE_ERRORS = frozenset(
    {
        IssueCode.FILE_TOO_LARGE,
        IssueCode.EMPTY_FILE,
        IssueCode.UNKNOWN_FORMAT,
        IssueCode.JSON_ARRAY,
        IssueCode.PARQUET_UNREADABLE,
        IssueCode.UNKNOWN_COLUMN,
        IssueCode.NO_USABLE_COLUMNS,
    }
)
TRUNCATION_WARNING_SHARE = 0.01
MAX_TRACKED_LABELS = 10_000
MAX_LISTED_LABELS = 50
HISTOGRAM_EDGES = (0, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
_FINE_LIMIT = 8192
_COARSE_SHIFT = 8
_COARSE_BINS = 4096
# Near-duplicate normalization, one bytes.translate pass: ASCII letters lowercased,
# ASCII punctuation, whitespace and control characters deleted.
_NEAR_TABLE = bytes(range(256)).upper().lower()
_NEAR_DELETE = bytes(c for c in range(128) if not chr(c).isalnum())
OnExample = Callable[[int | None, int | None, Normalized], None]


class DigestSet:
    """Seen-before test on 64-bit digests with a hard size bound (adaptive sampling).

    Below the bound it is exact. Past it, the set keeps only digests whose lowest
    `level` bits are zero, so identical items are always both kept or both
    dropped, and `distinct_estimate` stays unbiased.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.level = 0
        self._mask = 0
        self._seen: set[int] = set()

    @property
    def mask(self) -> int:
        """Digests with any of these bits set are not tracked."""
        return self._mask

    @property
    def seen(self) -> set[int]:
        """The tracked digests; add to it directly, then call `shrink_if_full`."""
        return self._seen

    def shrink_if_full(self) -> None:
        if len(self._seen) > self.capacity:
            self.level += 1
            self._mask = (1 << self.level) - 1
            self._seen = {d for d in self._seen if not d & self._mask}

    def seen_before(self, digest: int) -> bool:
        if digest & self._mask:
            return False
        if digest in self._seen:
            return True
        self._seen.add(digest)
        self.shrink_if_full()
        return False

    @property
    def distinct_estimate(self) -> int:
        return len(self._seen) << self.level

    @property
    def sample_rate(self) -> float:
        return 1.0 / (1 << self.level)


class _Issues:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []
        self.error_counts: dict[str, int] = {}
        self.warning_counts: dict[str, int] = {}
        self.truncated = False

    def add(self, issue: Issue) -> None:
        warning = issue.code in WARNING_CODES
        bucket, counts = (
            (self.warnings, self.warning_counts) if warning else (self.errors, self.error_counts)
        )
        counts[issue.code] = counts.get(issue.code, 0) + 1
        if len(bucket) < self.limit:
            bucket.append(issue)
        else:
            self.truncated = True


def validate_dataset(
    stream: IO[bytes],
    options: ValidationOptions | None = None,
    *,
    token_counter: ExactTokenCounter | None = None,
    on_example: OnExample | None = None,
) -> ValidationReport:
    """Read a dataset once and report every problem with its location, plus statistics.

    `token_counter` counts with the model's tokenizer; without it tokens are
    estimated. `on_example` sees each valid example (used by the splitter).
    """
    options = options or ValidationOptions()
    walk = DatasetWalk(stream, options)
    issues = _Issues(options.max_listed_issues)
    exact = DigestSet(options.max_tracked_digests)
    near = DigestSet(options.max_tracked_digests)
    fine = [0] * (_FINE_LIMIT + _COARSE_BINS)
    labels: dict[str, int] = {}
    cutoff = options.cutoff_length
    max_row = options.max_row_bytes
    remaining = options.max_samples if options.max_samples is not None else -1
    count = total_tokens = truncated = invalid = 0
    min_tokens = max_tokens = -1
    exact_dups = near_dups = 0
    first_exact: Issue | None = None
    first_near: Issue | None = None
    table, delete = _NEAR_TABLE, _NEAR_DELETE
    capacity = options.max_tracked_digests
    exact_seen, exact_mask = exact.seen, exact.mask
    near_seen, near_mask = near.seen, near.mask
    for item in walk:
        if not isinstance(item, tuple):
            issues.add(item)
            if item.code not in WARNING_CODES:
                invalid += 1
            continue
        line, row, normalized = item
        rendered = normalized.rendered
        encoded = rendered.encode()
        if len(encoded) > max_row:
            invalid += 1
            issues.add(_row_too_large(line, row, max_row))
            continue
        count += 1
        # DigestSet.seen_before, inlined: this loop is the validator's hot path.
        digest = hash(rendered)
        if not digest & exact_mask:
            if digest in exact_seen:
                exact_dups += 1
                if first_exact is None:
                    first_exact = Issue(code=IssueCode.DUPLICATES, message="", line=line, row=row)
            else:
                exact_seen.add(digest)
                if len(exact_seen) > capacity:
                    exact.shrink_if_full()
                    exact_seen, exact_mask = exact.seen, exact.mask
        digest = hash(encoded.translate(table, delete))
        if not digest & near_mask:
            if digest in near_seen:
                near_dups += 1
                if first_near is None:
                    first_near = Issue(
                        code=IssueCode.NEAR_DUPLICATES, message="", line=line, row=row
                    )
            else:
                near_seen.add(digest)
                if len(near_seen) > capacity:
                    near.shrink_if_full()
                    near_seen, near_mask = near.seen, near.mask
        tokens = (
            token_counter(rendered)
            if token_counter is not None
            else (len(encoded) + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN
        )
        total_tokens += tokens
        if tokens > max_tokens:
            max_tokens = tokens
        if tokens < min_tokens or min_tokens < 0:
            min_tokens = tokens
        if tokens > cutoff:
            truncated += 1
        if tokens < _FINE_LIMIT:
            fine[tokens] += 1
        else:
            fine[_FINE_LIMIT + min((tokens - _FINE_LIMIT) >> _COARSE_SHIFT, _COARSE_BINS - 1)] += 1
        label = normalized.label
        if label is not None and (label in labels or len(labels) < MAX_TRACKED_LABELS):
            labels[label] = labels.get(label, 0) + 1
        if on_example is not None:
            on_example(line, row, normalized)
        if remaining > 0:
            remaining -= 1
            if remaining == 0:
                break

    stats = DatasetStats(
        bytes_read=walk.bytes_read,
        records_read=walk.records_read,
        stopped_at_max_samples=remaining == 0,
    )
    if walk.records_read == 0 and not issues.error_counts:
        issues.add(
            Issue(
                code=IssueCode.EMPTY_FILE,
                message="the dataset holds no records; upload a file with examples",
            )
        )
    mismatch = method_mismatch(walk.kind, options.preference)
    if mismatch is not None:
        issues.add(mismatch)
    if FILE_ERRORS.isdisjoint(issues.error_counts):
        _judge_count(count, options, issues)
    if count:
        stats.duplicates = _duplicates(count, exact, near, exact_dups, near_dups)
        _judge_duplicates(stats.duplicates, first_exact, first_near, issues)
        stats.tokens = _token_stats(
            fine, count, total_tokens, min_tokens, max_tokens, truncated, cutoff, token_counter
        )
        _judge_truncation(stats.tokens, issues)
    if walk.kind is ExampleKind.CLASSIFICATION and labels:
        stats.classes = _class_balance(labels)
        _judge_balance(stats.classes, labels, issues)
    stats.invalid_records = invalid
    stats.error_counts = issues.error_counts
    stats.warning_counts = issues.warning_counts
    stats.issues_truncated = issues.truncated
    return ValidationReport(
        valid=not issues.error_counts,
        format=walk.format,
        kind=walk.kind,
        num_examples=count,
        columns_applied=walk.columns_applied,
        errors=issues.errors,
        warnings=issues.warnings,
        stats=stats,
    )


def _row_too_large(line: int | None, row: int | None, limit: int) -> Issue:
    return Issue(
        code=IssueCode.ROW_TOO_LARGE,
        message=f"the example's text is longer than the {limit / 1024**2:.1f} MiB limit per "
        "row; shorten or split it",
        line=line,
        row=row,
    )


def _judge_count(count: int, options: ValidationOptions, issues: _Issues) -> None:
    if count < options.min_examples:
        issues.add(
            Issue(
                code=IssueCode.TOO_FEW_EXAMPLES,
                message=f"{count} valid examples; at least {options.min_examples} are needed "
                f"({options.recommended_examples:,}-10,000 recommended). Add examples or fix "
                "the invalid ones",
            )
        )
    elif count < options.recommended_examples:
        issues.add(
            Issue(
                code=IssueCode.FEW_EXAMPLES,
                message=f"{count} valid examples; {options.recommended_examples:,} or more "
                "give meaningful fine-tuning",
            )
        )


def _duplicates(
    count: int, exact: DigestSet, near: DigestSet, exact_dups: int, near_dups: int
) -> DuplicateStats:
    if exact.level or near.level:
        exact_dups = max(0, count - exact.distinct_estimate)
        near_dups = max(exact_dups, count - near.distinct_estimate)
    return DuplicateStats(
        exact=exact_dups,
        near=near_dups,
        exact_share=round(exact_dups / count, 4),
        near_share=round(near_dups / count, 4),
        sample_rate=min(exact.sample_rate, near.sample_rate),
    )


def _where(issue: Issue | None) -> str:
    if issue is None:
        return ""
    if issue.row is not None:
        return f" (first at row {issue.row})"
    return f" (first at line {issue.line})"


def _judge_duplicates(
    stats: DuplicateStats, first_exact: Issue | None, first_near: Issue | None, issues: _Issues
) -> None:
    if stats.exact_share > DUPLICATE_WARNING_SHARE:
        issues.add(
            _located_at(
                first_exact,
                IssueCode.DUPLICATES,
                f"{stats.exact_share:.0%} of the examples ({stats.exact}) repeat an "
                f"earlier one{_where(first_exact)}; remove the duplicates",
            )
        )
    elif stats.near_share > DUPLICATE_WARNING_SHARE:
        issues.add(
            _located_at(
                first_near,
                IssueCode.NEAR_DUPLICATES,
                f"{stats.near_share:.0%} of the examples ({stats.near}) differ from an "
                f"earlier one only in case, spacing or punctuation{_where(first_near)}; "
                "remove the near-duplicates",
            )
        )


def _located_at(first: Issue | None, code: IssueCode, message: str) -> Issue:
    """A file-wide issue placed where its first occurrence is, when there is one."""
    return Issue(
        code=code,
        message=message,
        line=first.line if first else None,
        row=first.row if first else None,
    )


def _percentile(fine: list[int], count: int, share: float) -> int:
    target = max(1, round(count * share))
    seen = 0
    for index, n in enumerate(fine):
        seen += n
        if seen >= target:
            if index < _FINE_LIMIT:
                return index
            return _FINE_LIMIT + ((index - _FINE_LIMIT) << _COARSE_SHIFT)
    return 0


def _histogram(fine: list[int], cutoff: int) -> list[HistogramBin]:
    edges = sorted(set(HISTOGRAM_EDGES) | ({cutoff} if cutoff <= _FINE_LIMIT else set()))
    counts = [0] * len(edges)
    for index, n in enumerate(fine):
        if not n:
            continue
        tokens = index if index < _FINE_LIMIT else _FINE_LIMIT + ((index - _FINE_LIMIT) << 8)
        position = next(i for i in range(len(edges) - 1, -1, -1) if edges[i] <= tokens)
        counts[position] += n
    return [
        HistogramBin(
            lower=edge, upper=edges[i + 1] if i + 1 < len(edges) else None, count=counts[i]
        )
        for i, edge in enumerate(edges)
    ]


def _token_stats(
    fine: list[int],
    count: int,
    total: int,
    minimum: int,
    maximum: int,
    truncated: int,
    cutoff: int,
    counter: ExactTokenCounter | None,
) -> TokenStats:
    return TokenStats(
        method="exact" if counter is not None else "approximate",
        tokenizer=counter.name if counter is not None else None,
        total=total,
        min=minimum,
        max=maximum,
        mean=round(total / count, 2),
        p50=_percentile(fine, count, 0.5),
        p95=_percentile(fine, count, 0.95),
        cutoff_length=cutoff,
        truncated=truncated,
        truncated_share=round(truncated / count, 4),
        histogram=_histogram(fine, cutoff),
    )


def _judge_truncation(tokens: TokenStats, issues: _Issues) -> None:
    if tokens.truncated_share > TRUNCATION_WARNING_SHARE:
        issues.add(
            Issue(
                code=IssueCode.TRUNCATION,
                message=f"{tokens.truncated_share:.1%} of the examples ({tokens.truncated}) are "
                f"longer than the cutoff of {tokens.cutoff_length} tokens and will be "
                f"truncated (p95 {tokens.p95}); raise cutoff_length or shorten them",
            )
        )


def _class_balance(labels: dict[str, int]) -> ClassBalance:
    # Only the top labels: a report never echoes a column's values wholesale.
    ratio = max(labels.values()) / min(labels.values()) if len(labels) > 1 else None
    ordered = sorted(labels.items(), key=lambda kv: (-kv[1], kv[0]))
    listed = dict(ordered[:MAX_LISTED_LABELS])
    return ClassBalance(
        counts=listed,
        others=sum(count for _, count in ordered[MAX_LISTED_LABELS:]),
        num_classes=len(labels),
        imbalance_ratio=round(ratio, 2) if ratio else None,
    )


def _judge_balance(classes: ClassBalance, labels: dict[str, int], issues: _Issues) -> None:
    if len(labels) == 1:
        label = next(iter(classes.counts))
        issues.add(
            Issue(
                code=IssueCode.SINGLE_CLASS,
                message=f"every example has the label {label!r}; a classifier needs at least "
                "two classes",
            )
        )
    elif classes.imbalance_ratio is not None and classes.imbalance_ratio > IMBALANCE_WARNING_RATIO:
        largest = next(iter(classes.counts))
        rarest = max(labels, key=lambda label: (-labels[label], label))  # maybe not listed
        issues.add(
            Issue(
                code=IssueCode.CLASS_IMBALANCE,
                message=f"classes are imbalanced {classes.imbalance_ratio:.0f}:1 ({largest!r}: "
                f"{classes.counts[largest]}, {rarest!r}: {labels[rarest]}); add "
                "examples of the rare classes or downsample the common ones",
            )
        )
