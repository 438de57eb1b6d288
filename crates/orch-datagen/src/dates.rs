//! Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), after
//! Howard Hinnant's `days_from_civil` / `civil_from_days`. Small enough not to need chrono.

/// Day number of `y-m-d` (no validation; see [`parse_iso`] for checked input).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// `yyyy-mm-dd`, as in `invoices.csv`.
pub fn format_iso(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `d/mm/yyyy`, as in `accounts.csv` (`6/11/2018`, `2/07/2017`, `27/10/2018`): the day is
/// not zero-padded, the month is.
pub fn format_dmy(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{d}/{m:02}/{y}")
}

/// Parses a strict `yyyy-mm-dd` date into a day number.
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(format_iso(days_from_civil(2020, 2, 29)), "2020-02-29");
        for z in -800_000..800_000 {
            let (y, m, d) = civil_from_days(z);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn formats_and_parses() {
        let z = days_from_civil(2017, 7, 2);
        assert_eq!(format_dmy(z), "2/07/2017");
        assert_eq!(format_iso(z), "2017-07-02");
        assert_eq!(parse_iso("2017-07-02"), Some(z));
        assert_eq!(parse_iso("2021-02-29"), None);
        assert_eq!(parse_iso("2021-2-09"), None);
        assert_eq!(parse_iso("2021-13-01"), None);
        assert_eq!(parse_iso("+021-01-01"), None);
    }
}
