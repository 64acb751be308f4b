"""Stored and answered times: ISO 8601 UTC with a 4-digit year, readable back, for every year 1-9999."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from payments.models import iso_z


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000Z"),
        (datetime(99, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "0099-12-31T23:59:59.999Z"),
        (datetime(999, 6, 1, 12, 0, 0, 5_000, tzinfo=UTC), "0999-06-01T12:00:00.005Z"),
        (datetime(2026, 11, 25, 17, 25, 8, 223_999, tzinfo=UTC), "2026-11-25T17:25:08.223Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), "9999-12-31T23:59:59.999Z"),
        (datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))), "2026-01-01T00:00:00.000Z"),
    ],
)
def test_iso_z_has_four_digit_years_and_reads_back(moment: datetime, text: str) -> None:
    assert iso_z(moment) == text
    assert datetime.fromisoformat(text) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
