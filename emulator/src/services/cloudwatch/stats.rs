//! Statistics over data points: buckets of a period, the five standard statistics, percentiles.

use super::series::Point;
use std::collections::BTreeMap;

/// A statistic CloudWatch can compute here.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    SampleCount,
    Average,
    Sum,
    Minimum,
    Maximum,
    /// pNN.NN, in percent.
    Percentile(f64),
}

impl Stat {
    /// Parses "Average", "p99", "p99.9". `None` for anything else.
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "SampleCount" => Stat::SampleCount,
            "Average" => Stat::Average,
            "Sum" => Stat::Sum,
            "Minimum" => Stat::Minimum,
            "Maximum" => Stat::Maximum,
            _ => return parse_percentile(s).map(Stat::Percentile),
        })
    }
}

/// "p0".."p100" with up to two decimals (AWS's pNN.NN).
pub fn parse_percentile(s: &str) -> Option<f64> {
    let rest = s.strip_prefix('p')?;
    let (int, frac) = match rest.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (rest, None),
    };
    if int.is_empty() || int.len() > 3 || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 2 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let v: f64 = rest.parse().ok()?;
    (0.0..=100.0).contains(&v).then_some(v)
}

/// Points merged into one bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agg {
    pub n: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// (value, count); percentiles are only defined when every point carried values.
    pub values: Vec<(f64, f64)>,
    pub values_complete: bool,
}

impl Agg {
    pub fn of<'a>(points: impl IntoIterator<Item = &'a Point>) -> Option<Agg> {
        let mut agg: Option<Agg> = None;
        for p in points {
            let a = agg.get_or_insert_with(|| Agg {
                n: 0.0,
                sum: 0.0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                values: Vec::new(),
                values_complete: true,
            });
            a.n += p.n;
            a.sum += p.sum;
            a.min = a.min.min(p.min);
            a.max = a.max.max(p.max);
            if p.values.is_empty() {
                a.values_complete = false;
            } else {
                a.values.extend(p.values.iter().copied());
            }
        }
        agg
    }

    pub fn get(&self, stat: Stat) -> Option<f64> {
        match stat {
            Stat::SampleCount => Some(self.n),
            Stat::Average => (self.n > 0.0).then(|| self.sum / self.n),
            Stat::Sum => Some(self.sum),
            Stat::Minimum => Some(self.min),
            Stat::Maximum => Some(self.max),
            Stat::Percentile(p) => {
                if self.values_complete {
                    percentile(&self.values, p)
                } else {
                    None
                }
            }
        }
    }
}

/// Nearest-rank percentile over weighted values.
pub fn percentile(values: &[(f64, f64)], p: f64) -> Option<f64> {
    let mut v: Vec<(f64, f64)> = values.iter().copied().filter(|(_, c)| *c > 0.0).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = v.iter().map(|(_, c)| c).sum();
    let rank = (p / 100.0 * total).ceil().max(1.0);
    let mut seen = 0.0;
    for (value, count) in &v {
        seen += count;
        if seen >= rank {
            return Some(*value);
        }
    }
    v.last().map(|(value, _)| *value)
}

/// The start of the first bucket: StartTime rounded down to the second (periods under a minute)
/// or to the minute, as CloudWatch rounds recent start times.
pub fn align_start(start: f64, period: i64) -> f64 {
    if period < 60 {
        start.floor()
    } else {
        (start / 60.0).floor() * 60.0
    }
}

/// Groups points into buckets of `period` seconds from `start`; keys are bucket starts (seconds).
pub fn bucket(points: &[Point], start: f64, period: i64) -> BTreeMap<i64, Vec<&Point>> {
    let period = period.max(1) as f64;
    let mut out: BTreeMap<i64, Vec<&Point>> = BTreeMap::new();
    for p in points {
        if p.t < start {
            continue;
        }
        let k = ((p.t - start) / period).floor();
        out.entry((start + k * period) as i64).or_default().push(p);
    }
    out
}

/// Is `period` one CloudWatch accepts (1, 5, 10, 30 or a multiple of 60)?
pub fn valid_period(period: i64) -> bool {
    matches!(period, 1 | 5 | 10 | 30) || (period > 0 && period % 60 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(vals: &[(f64, f64)]) -> Vec<Point> {
        vals.iter()
            .map(|(t, v)| Point::single(*t, *v, None))
            .collect()
    }

    #[test]
    fn standard_statistics_and_percentiles_are_numerically_right() {
        let p = pts(&[(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 10.0)]);
        let a = Agg::of(&p).expect("agg");
        assert_eq!(a.get(Stat::SampleCount), Some(4.0));
        assert_eq!(a.get(Stat::Sum), Some(16.0));
        assert_eq!(a.get(Stat::Average), Some(4.0));
        assert_eq!(a.get(Stat::Minimum), Some(1.0));
        assert_eq!(a.get(Stat::Maximum), Some(10.0));
        assert_eq!(a.get(Stat::Percentile(50.0)), Some(2.0));
        assert_eq!(a.get(Stat::Percentile(75.0)), Some(3.0));
        assert_eq!(a.get(Stat::Percentile(99.0)), Some(10.0));
        assert_eq!(a.get(Stat::Percentile(0.0)), Some(1.0));
        // A statistic set has no values: no percentile.
        let mut set = Point::single(0.0, 0.0, None);
        set.values.clear();
        let a = Agg::of(&[set]).expect("agg");
        assert_eq!(a.get(Stat::Percentile(50.0)), None);
        // Weighted values: 1 × 9, 100 × 1 → p90 = 1, p91 = 100.
        assert_eq!(percentile(&[(1.0, 9.0), (100.0, 1.0)], 90.0), Some(1.0));
        assert_eq!(percentile(&[(1.0, 9.0), (100.0, 1.0)], 91.0), Some(100.0));
    }

    #[test]
    fn stat_names_and_periods() {
        assert_eq!(Stat::parse("p99.9"), Some(Stat::Percentile(99.9)));
        assert_eq!(Stat::parse("p100"), Some(Stat::Percentile(100.0)));
        assert_eq!(Stat::parse("p101"), None);
        assert_eq!(Stat::parse("p9.123"), None);
        assert_eq!(Stat::parse("tm99"), None);
        assert_eq!(Stat::parse("Average"), Some(Stat::Average));
        assert!(valid_period(60) && valid_period(30) && valid_period(300));
        assert!(!valid_period(7) && !valid_period(90) && !valid_period(0));
        let p = pts(&[(100.0, 1.0), (159.0, 2.0), (160.0, 3.0), (50.0, 9.0)]);
        let b = bucket(&p, align_start(100.0, 60), 60);
        assert_eq!(b.keys().copied().collect::<Vec<_>>(), vec![60, 120]);
        assert_eq!(b[&60].len(), 1);
        assert_eq!(b[&120].len(), 2);
    }
}
