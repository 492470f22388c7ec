//! Dates and times of day as text, without a time zone database or format strings: the
//! proleptic Gregorian calendar from days since the epoch (Howard Hinnant's `civil_from_days`).

/// `yyyy-MM-dd` of `days` since 1970-01-01. Years outside 0..=9999 carry a sign, as chrono
/// writes them.
pub(super) fn write_date(out: &mut Vec<u8>, days: i64) {
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        digits(out, year, 4);
    } else {
        out.push(if year < 0 { b'-' } else { b'+' });
        let year = year.abs();
        digits(out, year, if year > 9999 { 5 } else { 4 });
    }
    out.push(b'-');
    digits(out, month, 2);
    out.push(b'-');
    digits(out, day, 2);
}

/// `HH:mm:ss` of `seconds` into the day, then `.` and 3, 6 or 9 digits of `nanos` (as few as
/// show it exactly; nothing when zero).
pub(super) fn write_time(out: &mut Vec<u8>, seconds: i64, nanos: i64) {
    digits(out, seconds / 3600, 2);
    out.push(b':');
    digits(out, seconds / 60 % 60, 2);
    out.push(b':');
    digits(out, seconds % 60, 2);
    if nanos == 0 {
        return;
    }
    out.push(b'.');
    if nanos % 1_000_000 == 0 {
        digits(out, nanos / 1_000_000, 3);
    } else if nanos % 1000 == 0 {
        digits(out, nanos / 1000, 6);
    } else {
        digits(out, nanos, 9);
    }
}

/// `value` in at least `width` decimal digits (a minus sign first when negative, which the
/// callers' range checks rule out).
fn digits(out: &mut Vec<u8>, value: i64, width: usize) {
    if value < 0 {
        out.push(b'-');
    }
    let mut buffer = [b'0'; 20];
    let mut end = buffer.len();
    let mut rest = value.unsigned_abs();
    while rest > 0 {
        end -= 1;
        // A digit: 0..=9.
        buffer[end] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let start = end.min(buffer.len() - width);
    out.extend_from_slice(&buffer[start..]);
}

/// Year, month (1..=12) and day (1..=31) of `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(days: i64) -> String {
        let mut out = Vec::new();
        write_date(&mut out, days);
        String::from_utf8(out).unwrap()
    }

    fn time(seconds: i64, nanos: i64) -> String {
        let mut out = Vec::new();
        write_time(&mut out, seconds, nanos);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn calendar_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(11_016), "2000-02-29");
        assert_eq!(date(11_017), "2000-03-01");
        assert_eq!(date(-25_509), "1900-02-28");
        assert_eq!(date(-25_508), "1900-03-01");
        assert_eq!(date(2_932_896), "9999-12-31");
        assert_eq!(date(2_932_897), "+10000-01-01");
        assert_eq!(date(-719_528), "0000-01-01");
        assert_eq!(date(-719_529), "-0001-12-31");
    }

    #[test]
    fn days_count_up_one_date_at_a_time() {
        // Every day from 1600 to 2400 follows the one before it.
        let mut previous = civil_from_days(-135_140);
        assert_eq!(previous, (1600, 1, 1));
        for days in -135_139..=157_054 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = (y, m, d) == (py, pm + 1, 1) && pd >= 28;
            let next_year = (y, m, d) == (py + 1, 1, 1) && (pm, pd) == (12, 31);
            assert!(
                next_day || next_month || next_year,
                "{previous:?} then {:?}",
                (y, m, d)
            );
            previous = (y, m, d);
        }
        assert_eq!(previous, (2400, 1, 1));
    }

    #[test]
    fn times_of_day() {
        assert_eq!(time(0, 0), "00:00:00");
        assert_eq!(time(86_399, 999_999_999), "23:59:59.999999999");
        assert_eq!(time(45_296, 500_000_000), "12:34:56.500");
        assert_eq!(time(45_296, 123_456_000), "12:34:56.123456");
        assert_eq!(time(45_296, 1), "12:34:56.000000001");
    }
}
