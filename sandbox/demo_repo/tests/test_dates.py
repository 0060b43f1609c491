"""Tests for `dates`; run them from the repository root with `python3 -m unittest -v`."""

from __future__ import annotations

import time
import unittest
from datetime import UTC, datetime, timedelta

from dates import format_meeting


class FormatMeetingTest(unittest.TestCase):
    def test_winter_meeting_in_berlin(self) -> None:
        start = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
        self.assertEqual(format_meeting(start, "Europe/Berlin"), "Mon 15 Jan 10:00")

    def test_summer_meeting_in_berlin_is_in_daylight_saving_time(self) -> None:
        start = datetime(2024, 7, 15, 9, 0, tzinfo=UTC)
        self.assertEqual(format_meeting(start, "Europe/Berlin"), "Mon 15 Jul 11:00")

    def test_winter_meeting_in_new_york(self) -> None:
        start = datetime(2024, 1, 15, 15, 0, tzinfo=UTC)
        self.assertEqual(format_meeting(start, "America/New_York"), "Mon 15 Jan 10:00")

    def test_a_start_without_timezone_is_rejected(self) -> None:
        with self.assertRaises(ValueError):
            format_meeting(datetime(2024, 1, 15, 9, 0), "Europe/Berlin")


class SlowSuiteTest(unittest.TestCase):
    """SLOW ON PURPOSE: stands in for a longer suite (about 6 s) so a run can be interrupted."""

    def test_weekly_standup_in_tokyo_all_year(self) -> None:
        first = datetime(2024, 1, 1, 0, 30, tzinfo=UTC)
        for week in range(52):
            time.sleep(0.115)  # the "slow" part: pretend each week needs real work
            start = first + timedelta(weeks=week)
            self.assertTrue(format_meeting(start, "Asia/Tokyo").endswith(" 09:30"))
