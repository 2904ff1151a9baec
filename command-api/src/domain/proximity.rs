//! Choosing a technician for a dispatch: nearest available within a
//! radius, else someone at the ticket's site, else everyone (broadcast).
//! Pure, so every choice can be replayed and explained from the log.

use std::cmp::Ordering;

use event_store::{DispatchCandidate, DispatchChoice, GeoPoint, Location, UserId};
use serde::{Deserialize, Serialize};

use super::limits::DISPATCH_CANDIDATES_RECORDED_MAX;

/// Mean Earth radius (IUGG), in km.
pub const EARTH_RADIUS_KM: f64 = 6_371.008_8;

/// What the choice needs to know about one technician.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TechnicianInfo {
    /// The technician.
    pub id: UserId,
    /// Last reported position.
    pub position: Option<GeoPoint>,
    /// Site of the last report.
    pub site: Option<String>,
    /// False when on another active dispatch.
    pub available: bool,
}

/// The outcome of a choice, as recorded in `DispatchRequested`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TechnicianChoice {
    /// The chosen technician (`None` on broadcast).
    pub technician: Option<UserId>,
    /// How.
    pub choice: DispatchChoice,
    /// Distance of the chosen technician.
    pub distance_km: Option<f64>,
    /// Travel time at the configured speed.
    pub eta_minutes: Option<f64>,
    /// The chosen one first, then the nearest others, with why.
    pub candidates: Vec<DispatchCandidate>,
}

/// Great-circle distance between two points, in km.
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Minutes to travel `distance_km` at `speed_kmh`, to a tenth of a minute
/// (none for a speed ≤ 0).
pub fn eta_minutes(distance_km: f64, speed_kmh: f64) -> Option<f64> {
    (speed_kmh > 0.0 && speed_kmh.is_finite())
        .then(|| round_to(distance_km / speed_kmh * 60.0, 10.0))
}

/// The incident's coordinates, when both are known.
pub fn incident_point(location: Option<&Location>) -> Option<GeoPoint> {
    let loc = location?;
    Some(GeoPoint {
        lat: loc.lat?,
        lon: loc.lon?,
    })
}

/// Whether two site names denote the same site (case and edges ignored).
fn same_site(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Orders by distance (unknown last), then id, so choices are deterministic.
fn by_distance(a: &(Option<f64>, &TechnicianInfo), b: &(Option<f64>, &TechnicianInfo)) -> Ordering {
    match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then(a.1.id.cmp(&b.1.id))
}

/// Rounds a recorded distance to the metre (and an ETA to a tenth of a
/// minute), so recorded figures do not depend on the last bits of `sin`.
fn round_to(value: f64, per_unit: f64) -> f64 {
    (value * per_unit).round() / per_unit
}

/// Chooses a technician for an incident at `location`: the nearest available
/// one within `radius_km`; else an available one at the incident's site
/// (nearest first); else nobody (`Broadcast`: everyone is notified).
pub fn choose_technician(
    location: Option<&Location>,
    technicians: &[TechnicianInfo],
    radius_km: f64,
    speed_kmh: f64,
) -> TechnicianChoice {
    choose_technician_excluding(location, technicians, &[], radius_km, speed_kmh)
}

/// [`choose_technician`], never choosing anyone in `excluded` (technicians
/// who declined this ticket).
pub fn choose_technician_excluding(
    location: Option<&Location>,
    technicians: &[TechnicianInfo],
    excluded: &[UserId],
    radius_km: f64,
    speed_kmh: f64,
) -> TechnicianChoice {
    let point = incident_point(location);
    let site = location.and_then(|l| l.site.as_deref());
    let eligible = |t: &TechnicianInfo| t.available && !excluded.contains(&t.id);
    let mut scored: Vec<(Option<f64>, &TechnicianInfo)> = technicians
        .iter()
        .map(|t| {
            (
                point
                    .zip(t.position)
                    .map(|(a, b)| round_to(haversine_km(a, b), 1000.0)),
                t,
            )
        })
        .collect();

    let nearest = scored
        .iter()
        .filter(|(d, t)| eligible(t) && d.is_some_and(|d| d <= radius_km))
        .min_by(|a, b| by_distance(a, b))
        .map(|(d, t)| (*d, t.id, DispatchChoice::Nearest));
    let chosen = nearest.or_else(|| {
        let site = site?;
        scored
            .iter()
            .filter(|(_, t)| eligible(t) && t.site.as_deref().is_some_and(|s| same_site(s, site)))
            .min_by(|a, b| by_distance(a, b))
            .map(|(d, t)| (*d, t.id, DispatchChoice::Site))
    });

    // Only the nearest few are recorded: the event must stay small.
    let keep = DISPATCH_CANDIDATES_RECORDED_MAX.min(scored.len());
    if keep > 0 && keep < scored.len() {
        scored.select_nth_unstable_by(keep - 1, by_distance);
        scored.truncate(keep);
    }
    scored.sort_by(by_distance);
    let note = |d: Option<f64>, t: &TechnicianInfo| -> String {
        if excluded.contains(&t.id) {
            "declined this ticket".into()
        } else if !t.available {
            "busy".into()
        } else if point.is_none() {
            "incident has no coordinates".into()
        } else {
            match d {
                None => "no known position".into(),
                Some(d) if d <= radius_km => "available, farther".into(),
                Some(_) => "outside radius".into(),
            }
        }
    };
    let mut candidates = Vec::with_capacity(keep + 1);
    if let Some((d, id, how)) = chosen {
        candidates.push(DispatchCandidate {
            technician: id,
            distance_km: d,
            note: match how {
                DispatchChoice::Site => "chosen: at the incident's site".into(),
                _ => "chosen: nearest available".into(),
            },
        });
    }
    for (d, t) in scored {
        if candidates.len() >= DISPATCH_CANDIDATES_RECORDED_MAX {
            break;
        }
        if chosen.is_some_and(|(_, id, _)| id == t.id) {
            continue;
        }
        candidates.push(DispatchCandidate {
            technician: t.id,
            distance_km: d,
            note: note(d, t),
        });
    }
    match chosen {
        Some((d, id, how)) => TechnicianChoice {
            technician: Some(id),
            choice: how,
            distance_km: d,
            eta_minutes: d.and_then(|d| eta_minutes(d, speed_kmh)),
            candidates,
        },
        None => TechnicianChoice {
            technician: None,
            choice: DispatchChoice::Broadcast,
            distance_km: None,
            eta_minutes: None,
            candidates,
        },
    }
}

/// The record of an agent naming the technician: distance and ETA when
/// both positions are known.
pub fn explicit_choice(
    location: Option<&Location>,
    technicians: &[TechnicianInfo],
    technician: UserId,
    speed_kmh: f64,
) -> TechnicianChoice {
    let position = technicians
        .iter()
        .find(|t| t.id == technician)
        .and_then(|t| t.position);
    let distance_km = incident_point(location)
        .zip(position)
        .map(|(a, b)| round_to(haversine_km(a, b), 1000.0));
    TechnicianChoice {
        technician: Some(technician),
        choice: DispatchChoice::Explicit,
        distance_km,
        eta_minutes: distance_km.and_then(|d| eta_minutes(d, speed_kmh)),
        candidates: vec![DispatchCandidate {
            technician,
            distance_km,
            note: "chosen: named by the dispatcher".into(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    fn tech(
        n: u128,
        position: Option<GeoPoint>,
        site: Option<&str>,
        available: bool,
    ) -> TechnicianInfo {
        TechnicianInfo {
            id: Uuid::from_u128(n),
            position,
            site: site.map(str::to_string),
            available,
        }
    }

    fn at(lat: f64, lon: f64, site: Option<&str>) -> Location {
        Location {
            lat: Some(lat),
            lon: Some(lon),
            site: site.map(str::to_string),
            ..Location::default()
        }
    }

    fn close(actual: f64, expected: f64) -> bool {
        ((actual - expected) / expected).abs() < 0.005
    }

    #[test]
    fn distances_match_published_great_circle_figures() {
        // London (51.5074, -0.1278) – Paris (48.8566, 2.3522): 343.5 km.
        assert!(close(
            haversine_km(p(51.5074, -0.1278), p(48.8566, 2.3522)),
            343.5
        ));
        // New York JFK (40.6413, -73.7781) – London LHR (51.4700, -0.4543): 5,540 km.
        assert!(close(
            haversine_km(p(40.6413, -73.7781), p(51.4700, -0.4543)),
            5_540.0
        ));
        // Sydney (-33.8688, 151.2093) – Melbourne (-37.8136, 144.9631): 713.4 km.
        assert!(close(
            haversine_km(p(-33.8688, 151.2093), p(-37.8136, 144.9631)),
            713.4
        ));
        assert_eq!(haversine_km(p(10.0, 10.0), p(10.0, 10.0)), 0.0);
        // Antipodes: half the circumference, no NaN.
        assert!(close(haversine_km(p(0.0, 0.0), p(0.0, 180.0)), 20_015.1));
    }

    #[test]
    fn nearest_available_within_radius_wins() {
        let techs = [
            tech(1, Some(p(48.86, 2.35)), None, false), // closest but busy
            tech(2, Some(p(48.90, 2.40)), None, true),
            tech(3, Some(p(48.70, 2.20)), None, true),
            tech(4, Some(p(51.50, -0.12)), None, true), // London: outside 50 km
            tech(5, None, None, true),
        ];
        let c = choose_technician(Some(&at(48.8566, 2.3522, None)), &techs, 50.0, 40.0);
        assert_eq!(c.technician, Some(Uuid::from_u128(2)));
        assert_eq!(c.choice, DispatchChoice::Nearest);
        let d = c.distance_km.expect("distance");
        assert!(d > 0.0 && d < 10.0);
        assert_eq!(c.eta_minutes, eta_minutes(d, 40.0));
        assert_eq!(c.candidates[0].technician, Uuid::from_u128(2));
        assert_eq!(c.candidates.len(), 5);
        let notes: Vec<&str> = c.candidates.iter().map(|c| c.note.as_str()).collect();
        assert_eq!(
            notes,
            [
                "chosen: nearest available",
                "busy",
                "available, farther",
                "outside radius",
                "no known position"
            ]
        );
    }

    #[test]
    fn site_fallback_then_broadcast() {
        let techs = [
            tech(1, Some(p(0.0, 0.0)), Some("HQ"), true),
            tech(2, None, Some("Depot"), true),
            tech(3, None, Some(" hq "), false),
        ];
        let c = choose_technician(Some(&at(48.0, 2.0, Some("hq"))), &techs, 50.0, 40.0);
        assert_eq!(
            (c.technician, c.choice),
            (Some(Uuid::from_u128(1)), DispatchChoice::Site)
        );
        let c = choose_technician(Some(&at(48.0, 2.0, Some("Elsewhere"))), &techs, 50.0, 40.0);
        assert_eq!((c.technician, c.choice), (None, DispatchChoice::Broadcast));
        assert_eq!(c.eta_minutes, None);
        let c = choose_technician(None, &[], 50.0, 40.0);
        assert_eq!((c.technician, c.choice), (None, DispatchChoice::Broadcast));
        assert!(c.candidates.is_empty());
    }

    #[test]
    fn ties_break_by_id_and_candidates_are_capped() {
        let techs: Vec<TechnicianInfo> = (0..1_000u128)
            .rev()
            .map(|n| tech(n, Some(p(1.0, 1.0)), None, true))
            .collect();
        let c = choose_technician(Some(&at(1.0, 1.0, None)), &techs, 50.0, 40.0);
        assert_eq!(c.technician, Some(Uuid::from_u128(0)));
        assert_eq!(c.candidates.len(), DISPATCH_CANDIDATES_RECORDED_MAX);
    }
}
