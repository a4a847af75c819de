//! A bounded per-second timeline: one point per second up to `max` points,
//! then every two points merge into one of twice the step, and so on, so
//! that a day-long attack keeps its shape in a fixed number of points.

use serde::{Deserialize, Serialize};

use super::figures::Figures;

/// Points kept at most (an hour at one per second).
pub const MAX_POINTS: usize = 3600;

/// One point: the mean rates over `step_secs` seconds from `t`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Point {
    /// Unix seconds at the start of the point.
    pub t: u64,
    #[serde(flatten)]
    pub f: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Timeline {
    /// Seconds per point.
    pub step_secs: u64,
    pub points: Vec<Point>,
    /// The point being filled (fewer than `step_secs` seconds so far) and
    /// how many seconds it holds.
    #[serde(skip)]
    pending: Option<(Point, u64)>,
    #[serde(skip, default = "max_points")]
    max: usize,
}

fn max_points() -> usize {
    MAX_POINTS
}

impl Timeline {
    pub fn new(max: usize) -> Self {
        Timeline {
            step_secs: 1,
            points: Vec::new(),
            pending: None,
            max: max.max(2),
        }
    }

    /// Adds the figures of second `t`.
    pub fn push(&mut self, t: u64, f: Figures) {
        let (mut p, n) = match self.pending.take() {
            Some((p, n)) => (
                Point {
                    t: p.t,
                    f: p.f.merge(&f, n as f64),
                },
                n + 1,
            ),
            None => (Point { t, f }, 1),
        };
        if n < self.step_secs {
            self.pending = Some((p, n));
            return;
        }
        p.t = p.t.min(t);
        self.points.push(p);
        if self.points.len() >= self.max {
            self.coarsen();
        }
    }

    /// Every two points into one, twice the step.
    fn coarsen(&mut self) {
        let pts = std::mem::take(&mut self.points);
        self.points = pts
            .chunks(2)
            .filter_map(|c| {
                let a = c.first()?;
                Some(match c.get(1) {
                    Some(b) => Point {
                        t: a.t,
                        f: a.f.merge(&b.f, 1.0),
                    },
                    None => *a,
                })
            })
            .collect();
        self.step_secs *= 2;
    }

    /// Points including the one being filled.
    pub fn all(&self) -> Vec<Point> {
        let mut v = self.points.clone();
        v.extend(self.pending.map(|(p, _)| p));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pps: f64) -> Figures {
        Figures {
            pps,
            ..Figures::default()
        }
    }

    #[test]
    fn one_point_per_second_until_full() {
        let mut t = Timeline::new(MAX_POINTS);
        for s in 0..100 {
            t.push(1000 + s, f(s as f64));
        }
        assert_eq!(t.step_secs, 1);
        assert_eq!(t.points.len(), 100);
        assert_eq!(t.points[7].t, 1007);
        assert_eq!(t.points[7].f.pps, 7.0);
    }

    #[test]
    fn coarsens_and_stays_bounded() {
        let mut t = Timeline::new(8);
        for s in 0..1000u64 {
            t.push(s, f(1.0 + (s % 2) as f64));
            assert!(t.points.len() < 8, "bounded at {s}");
        }
        // 1000 s into fewer than 8 points: 128 s or more per point.
        assert!(t.step_secs >= 128, "step {}", t.step_secs);
        let pts = t.all();
        assert_eq!(pts[0].t, 0);
        for w in pts.windows(2) {
            assert_eq!(w[1].t - w[0].t, t.step_secs, "evenly spaced");
        }
        // Alternating 1 and 2 pps average to 1.5 in every full point.
        for p in &t.points {
            assert!((p.f.pps - 1.5).abs() < 1e-9, "{p:?}");
        }
    }
}
