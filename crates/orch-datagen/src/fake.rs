//! Fake field values with the shapes and quirks of the bundled data set.

use std::collections::HashSet;

use rand::Rng;

use crate::vocab::*;

fn pick<'a, R: Rng>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Appends `n` random decimal digits.
fn push_digits<R: Rng>(rng: &mut R, out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
}

/// Replaces each `#` of `template` by a random digit.
fn fill<R: Rng>(rng: &mut R, template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    for c in template.chars() {
        if c == '#' {
            push_digits(rng, &mut out, 1);
        } else {
            out.push(c);
        }
    }
    out
}

/// "Apex Auto Group", "Horizon Motors"; names repeat across accounts, as in the original.
pub fn company_name<R: Rng>(rng: &mut R) -> String {
    let prefix = pick(rng, COMPANY_PREFIXES);
    if rng.random_bool(0.08) {
        format!("{prefix} {}", pick(rng, COMPANY_STANDALONE))
    } else {
        let kind = pick(rng, COMPANY_KINDS);
        format!("{prefix} {kind} {}", pick(rng, COMPANY_SUFFIXES))
    }
}

fn city<R: Rng>(rng: &mut R) -> String {
    match rng.random_range(0..4u8) {
        0 => format!(
            "{} {}{}",
            pick(rng, CITY_PREFIXES),
            pick(rng, FEMALE_FIRST),
            pick(rng, CITY_SUFFIXES)
        ),
        1 => format!("{} {}", pick(rng, CITY_PREFIXES), pick(rng, MALE_FIRST)),
        2 => format!("{}{}", pick(rng, FEMALE_FIRST), pick(rng, CITY_SUFFIXES)),
        _ => format!("{}{}", pick(rng, LAST_NAMES), pick(rng, CITY_SUFFIXES)),
    }
}

/// A two-line US postal address, always containing a newline and usually a comma:
/// `"58987 Crystal Terrace\nWest Katherine, AR 24780"`, `"PSC 7587, Box 7669\nAPO AE 53413"`.
pub fn address<R: Rng>(rng: &mut R) -> String {
    let mut s = String::with_capacity(64);
    if rng.random_bool(0.09) {
        // Military addresses, about 9% of the original.
        match rng.random_range(0..4u8) {
            0 => {
                s.push_str("Unit ");
                push_digits(rng, &mut s, 4);
                s.push_str(" Box ");
                push_digits(rng, &mut s, 4);
                s.push_str("\nDPO ");
            }
            1 => {
                s.push_str("PSC ");
                push_digits(rng, &mut s, 4);
                s.push_str(", Box ");
                push_digits(rng, &mut s, 4);
                s.push_str("\nAPO ");
            }
            2 => {
                s.push_str("USNS ");
                s.push_str(pick(rng, LAST_NAMES));
                s.push_str("\nFPO ");
            }
            _ => {
                s.push_str("USS ");
                s.push_str(pick(rng, LAST_NAMES));
                s.push_str("\nFPO ");
            }
        }
        s.push_str(pick(rng, MILITARY_STATES));
        s.push(' ');
        push_digits(rng, &mut s, 5);
        return s;
    }
    let building_digits = rng.random_range(3..=5);
    push_digits(rng, &mut s, building_digits);
    s.push(' ');
    let street_first = if rng.random_bool(0.5) {
        pick(rng, FEMALE_FIRST)
    } else {
        pick(rng, LAST_NAMES)
    };
    s.push_str(street_first);
    s.push(' ');
    s.push_str(pick(rng, STREET_SUFFIXES));
    if rng.random_bool(0.3) {
        s.push_str(if rng.random_bool(0.5) {
            " Apt. "
        } else {
            " Suite "
        });
        push_digits(rng, &mut s, 3);
    }
    s.push('\n');
    s.push_str(&city(rng));
    s.push_str(", ");
    s.push_str(pick(rng, STATES));
    s.push(' ');
    push_digits(rng, &mut s, 5);
    s
}

/// `(contact_person, gender)`, with gender `M`/`F` matching the first name.
pub fn person<R: Rng>(rng: &mut R) -> (String, &'static str) {
    let male = rng.random_bool(0.55);
    let first = pick(rng, if male { MALE_FIRST } else { FEMALE_FIRST });
    let last = pick(rng, LAST_NAMES);
    let name = if rng.random_bool(0.02) {
        format!("{first} {last} {}", pick(rng, NAME_SUFFIXES))
    } else {
        format!("{first} {last}")
    };
    (name, if male { "M" } else { "F" })
}

/// A phone number in one of the many shapes of the original (`001-470-476-0187x922`,
/// `(088)626-2015x0464`, `848.936.5974`, `+1-527-599-2269x3043`, ...).
pub fn phone<R: Rng>(rng: &mut R) -> String {
    let total: u32 = PHONE_FORMATS.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (template, w) in PHONE_FORMATS {
        if x < *w {
            return fill(rng, template);
        }
        x -= w;
    }
    unreachable!("weights cover the whole range")
}

/// Generates unique ISBN-10-like item ids with a valid check digit and the hyphenation of
/// the original (`1-60559-539-X`, `0-19-815284-1`).
pub struct IsbnGen {
    seen: HashSet<[u8; 9]>,
}

impl Default for IsbnGen {
    fn default() -> Self {
        Self::new()
    }
}

impl IsbnGen {
    pub fn new() -> Self {
        Self {
            seen: HashSet::new(),
        }
    }

    pub fn next<R: Rng>(&mut self, rng: &mut R) -> String {
        loop {
            let mut digits = [0u8; 9];
            digits[0] = u8::from(!rng.random_bool(0.53)); // group 0 or 1 (English)
            for d in &mut digits[1..] {
                *d = rng.random_range(0..10u8);
            }
            // Publisher-code length, weighted like the original's hyphenation.
            const WEIGHTS: [(usize, u32); 6] = [(2, 12), (3, 47), (4, 15), (5, 18), (6, 5), (7, 3)];
            let mut x = rng.random_range(0..100u32);
            let mut publisher = 3;
            for (len, w) in WEIGHTS {
                if x < w {
                    publisher = len;
                    break;
                }
                x -= w;
            }
            if !self.seen.insert(digits) {
                continue; // the same number with another hyphenation would still clash
            }
            let mut s = String::with_capacity(13);
            for (i, d) in digits.iter().enumerate() {
                if i == 1 || i == 1 + publisher {
                    s.push('-');
                }
                s.push(char::from(b'0' + d));
            }
            s.push('-');
            s.push(isbn10_check(&digits));
            return s;
        }
    }
}

/// ISBN-10 check character of the first nine digits.
pub fn isbn10_check(digits: &[u8; 9]) -> char {
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, &d)| (10 - i as u32) * u32::from(d))
        .sum();
    match (11 - sum % 11) % 11 {
        10 => 'X',
        c => char::from(b'0' + c as u8),
    }
}

/// "TurboAdSpot"; the vocabulary is small, so SKUs share names.
pub fn item_name<R: Rng>(rng: &mut R) -> String {
    if rng.random_bool(0.03) {
        return format!("AdAuto{}", pick(rng, ITEM_TAILS));
    }
    format!(
        "{}{}{}",
        pick(rng, ITEM_HEADS),
        pick(rng, ITEM_MIDDLES),
        pick(rng, ITEM_TAILS)
    )
}

pub fn item_description<R: Rng>(rng: &mut R) -> &'static str {
    pick(rng, ITEM_DESCRIPTIONS)
}

/// A standard normal variate (Box-Muller), to avoid depending on rand_distr.
fn std_normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `(cost, retail)`. Costs are skewed towards small values (0..80); the retail price is the
/// cost times a log-normal factor, so about a quarter of the SKUs sell below cost, as in the
/// original.
pub fn prices<R: Rng>(rng: &mut R) -> (f64, f64) {
    let cost = (80.0 * rng.random::<f64>().powf(1.8)).max(0.001);
    // Redraw (rather than clamp, which would print round numbers) the rare extremes.
    loop {
        let retail = cost * (0.55 + std_normal(rng)).exp();
        if (0.005..=215.0).contains(&retail) {
            return (cost, retail);
        }
    }
}

/// Formats like a spreadsheet's "General" cell, which the original went through: 10
/// significant digits for values >= 1, 9 decimals below 1, trailing zeros dropped
/// (`13.38563993`, `0.229422859`, `78.867315`, `173.5434384`).
pub fn format_price(v: f64) -> String {
    let int_digits = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as i64 + 1).max(1)
    };
    let decimals = (10 - int_digits).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn prices_look_like_the_original() {
        assert_eq!(format_price(13.385639934), "13.38563993");
        assert_eq!(format_price(0.2294228591), "0.229422859");
        assert_eq!(format_price(78.8673150001), "78.867315");
        assert_eq!(format_price(173.54343841), "173.5434384");
        assert_eq!(format_price(2.0), "2");
    }

    #[test]
    fn isbn_check_digits() {
        // Item ids taken from the bundled skus.csv.
        for id in [
            "1-60559-539-X",
            "0-19-815284-1",
            "0-341-12706-X",
            "1-9776-0963-5",
        ] {
            let digits: Vec<u8> = id
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect();
            let nine: [u8; 9] = digits[..9].try_into().unwrap();
            assert_eq!(isbn10_check(&nine), id.chars().last().unwrap(), "{id}");
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut g = IsbnGen::new();
        for _ in 0..1000 {
            let id = g.next(&mut rng);
            assert_eq!(id.len(), 13, "{id}");
            assert_eq!(id.matches('-').count(), 3, "{id}");
        }
    }

    #[test]
    fn addresses_are_two_lines() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let a = address(&mut rng);
            assert_eq!(a.matches('\n').count(), 1, "{a:?}");
        }
    }
}
