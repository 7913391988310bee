//! Impact × urgency → priority, by a configurable matrix (ITIL 3×3 by default).

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the stored/wire form; `field` names the input in the error.
            pub fn parse(s: &str, field: &str) -> Result<Self, DomainError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(DomainError::invalid(field, format!(
                        "must be one of: {}", [$($text),+].join(", ")))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(/// How widely an incident affects the business.
    Impact { Low = "low", Medium = "medium", High = "high" });
text_enum!(/// How soon the business needs it fixed.
    Urgency { Low = "low", Medium = "medium", High = "high" });
text_enum!(/// The derived (or overridden) priority; ordered most urgent first.
    Priority { Critical = "critical", High = "high", Medium = "medium", Low = "low", Planning = "planning" });

impl Priority {
    /// Rank used for sorting and storage: 0 is most urgent.
    pub fn rank(self) -> i16 {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Medium => 2,
            Self::Low => 3,
            Self::Planning => 4,
        }
    }

    pub fn from_rank(rank: i16) -> Option<Self> {
        Self::ALL.iter().copied().find(|p| p.rank() == rank)
    }
}

fn level(i: usize) -> usize {
    i.min(2)
}

/// The impact × urgency table. Rows are impact (low, medium, high), columns urgency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PriorityMatrix {
    pub cells: [[Priority; 3]; 3],
}

impl Default for PriorityMatrix {
    /// The usual ITIL matrix: high×high is critical, low×low is planning.
    fn default() -> Self {
        use Priority::*;
        Self {
            cells: [
                // urgency:  low       medium  high
                [Planning, Low, Medium],  // impact low
                [Low, Medium, High],      // impact medium
                [Medium, High, Critical], // impact high
            ],
        }
    }
}

impl PriorityMatrix {
    pub fn derive(&self, impact: Impact, urgency: Urgency) -> Priority {
        let row = level(impact as usize);
        let col = level(urgency as usize);
        self.cells[row][col]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_matrix_is_itil() {
        let m = PriorityMatrix::default();
        let cases = [
            (Impact::High, Urgency::High, Priority::Critical),
            (Impact::High, Urgency::Medium, Priority::High),
            (Impact::High, Urgency::Low, Priority::Medium),
            (Impact::Medium, Urgency::High, Priority::High),
            (Impact::Medium, Urgency::Medium, Priority::Medium),
            (Impact::Medium, Urgency::Low, Priority::Low),
            (Impact::Low, Urgency::High, Priority::Medium),
            (Impact::Low, Urgency::Medium, Priority::Low),
            (Impact::Low, Urgency::Low, Priority::Planning),
        ];
        for (i, u, p) in cases {
            assert_eq!(m.derive(i, u), p, "{i} × {u}");
        }
    }

    #[test]
    fn text_forms_round_trip_and_junk_is_refused() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str(), "priority"), Ok(*p));
            assert_eq!(Priority::from_rank(p.rank()), Some(*p));
        }
        assert!(Priority::parse("urgent", "priority").is_err());
        assert!(Impact::parse("HIGH", "impact").is_err());
    }

    proptest! {
        /// Raising impact or urgency never lowers the priority of the default matrix.
        #[test]
        fn default_matrix_is_monotonic(i in 0usize..3, u in 0usize..3) {
            let m = PriorityMatrix::default();
            let p = m.derive(Impact::ALL[i], Urgency::ALL[u]);
            if i < 2 { prop_assert!(m.derive(Impact::ALL[i + 1], Urgency::ALL[u]).rank() <= p.rank()); }
            if u < 2 { prop_assert!(m.derive(Impact::ALL[i], Urgency::ALL[u + 1]).rank() <= p.rank()); }
        }
    }
}
