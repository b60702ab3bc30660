//! The accuracy-energy trade-off of a sweep under one hardware profile: the Pareto front in
//! (test error, energy), both minimised, and the minimum-energy point that reaches an accuracy
//! target. An analysis: it reads points and returns indices into them. Points that were not
//! measured under the profile (or carry a non-finite number) are ignored; ties are broken by id,
//! then by position, so the answers never depend on floating-point luck.

use std::cmp::Ordering;

use super::point::PointResult;

/// Whether `a` dominates `b`, both given as (test error, energy): no worse in either, better in
/// at least one.
pub fn dominates(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 <= b.0 && a.1 <= b.1 && (a.0 < b.0 || a.1 < b.1)
}

/// Indices of the points that no other point dominates in (test error, energy) under `profile`,
/// by energy ascending, then id. Points with equal error and energy dominate neither other, so
/// all of them are on the front.
pub fn pareto_front(points: &[PointResult], profile: &str) -> Vec<usize> {
    let measured: Vec<(usize, (f64, f64))> = points
        .iter()
        .enumerate()
        .filter_map(|(index, point)| Some((index, point.error_and_energy(profile)?)))
        .collect();
    // Quadratic, and plainly the definition: a sweep has hundreds of points, not millions.
    let mut front: Vec<(usize, (f64, f64))> = measured
        .iter()
        .filter(|(_, candidate)| {
            !measured
                .iter()
                .any(|(_, other)| dominates(*other, *candidate))
        })
        .copied()
        .collect();
    front.sort_by(|(a, (_, energy_a)), (b, (_, energy_b))| {
        energy_a
            .total_cmp(energy_b)
            .then_with(|| by_id(points, *a, *b))
    });
    front.into_iter().map(|(index, _)| index).collect()
}

/// Index of the point with the least energy under `profile` among those whose integer accuracy
/// reaches `target` (percent) and, if `bits` is given, of that precision; ties go to the higher
/// accuracy, then the smaller id. `None` when no point qualifies.
pub fn min_energy_at(
    points: &[PointResult],
    profile: &str,
    target: f64,
    bits: Option<u32>,
) -> Option<usize> {
    points
        .iter()
        .enumerate()
        .filter(|(_, point)| point.integer_accuracy >= target)
        .filter(|(_, point)| bits.is_none_or(|bits| point.bits == bits))
        .filter_map(|(index, point)| Some((index, point.energy_under(profile)?)))
        .min_by(|(a, energy_a), (b, energy_b)| {
            energy_a
                .total_cmp(energy_b)
                .then_with(|| {
                    points[*b]
                        .integer_accuracy
                        .total_cmp(&points[*a].integer_accuracy)
                })
                .then_with(|| by_id(points, *a, *b))
        })
        .map(|(index, _)| index)
}

/// Order of two points by id, then by position for points that share an id.
fn by_id(points: &[PointResult], a: usize, b: usize) -> Ordering {
    points[a].id.cmp(&points[b].id).then(a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::explore::point::tests::point;

    #[test]
    fn a_hand_made_front() {
        let points = vec![
            point("q1", 1, 85.0, 1.0),
            point("q2", 2, 88.0, 2.0),
            // Dominated by q2: more energy, lower accuracy.
            point("q4-small", 4, 87.0, 3.0),
            point("q4", 4, 90.0, 4.0),
            // Same error as q4 at more energy.
            point("q8", 8, 90.0, 8.0),
            // Equal to q2 in both: neither dominates the other.
            point("a-twin", 2, 88.0, 2.0),
        ];
        assert_eq!(pareto_front(&points, "p"), vec![0, 5, 1, 3]);
        assert_eq!(pareto_front(&points, "absent"), Vec::<usize>::new());

        assert_eq!(min_energy_at(&points, "p", 89.0, None), Some(3));
        assert_eq!(min_energy_at(&points, "p", 89.0, Some(8)), Some(4));
        assert_eq!(min_energy_at(&points, "p", 89.0, Some(2)), None);
        assert_eq!(min_energy_at(&points, "p", 95.0, None), None);
        // q2 and a-twin tie in energy and accuracy: the smaller id wins.
        assert_eq!(min_energy_at(&points, "p", 88.0, Some(2)), Some(5));
    }

    #[test]
    fn ties_in_energy_go_to_the_higher_accuracy() {
        let points = vec![point("a", 4, 90.0, 3.0), point("b", 4, 91.0, 3.0)];
        assert_eq!(min_energy_at(&points, "p", 80.0, None), Some(1));
    }

    #[test]
    fn unmeasured_points_are_ignored() {
        let mut points = vec![point("a", 1, 90.0, 3.0), point("b", 1, 95.0, 1.0)];
        points[1].energy.insert("p".into(), f64::NAN);
        assert_eq!(pareto_front(&points, "p"), vec![0]);
        assert_eq!(min_energy_at(&points, "p", 80.0, None), Some(0));
        points[0].integer_accuracy = f64::NAN;
        assert_eq!(pareto_front(&points, "p"), Vec::<usize>::new());
        assert_eq!(min_energy_at(&points, "p", 80.0, None), None);
    }

    /// Points on a coarse grid, so that ties in error, in energy and in both are common.
    fn random_points() -> impl Strategy<Value = Vec<PointResult>> {
        prop::collection::vec((0u32..8, 0u32..12, 1u32..=16), 0..40).prop_map(|cells| {
            cells
                .into_iter()
                .enumerate()
                .map(|(index, (accuracy_step, energy_step, bits))| {
                    let accuracy = 80.0 + 2.5 * f64::from(accuracy_step);
                    let energy = 1.0 + f64::from(energy_step);
                    point(&format!("p{:02}", index % 30), bits, accuracy, energy)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn the_front_is_exactly_the_non_dominated_points(points in random_points()) {
            let front = pareto_front(&points, "p");
            let coordinates = |index: usize| points[index].error_and_energy("p").unwrap();
            for &on_front in &front {
                let dominated = points
                    .iter()
                    .any(|other| dominates(other.error_and_energy("p").unwrap(), coordinates(on_front)));
                prop_assert!(!dominated, "{} is on the front but dominated", points[on_front].id);
            }
            for index in (0..points.len()).filter(|index| !front.contains(index)) {
                prop_assert!(
                    front.iter().any(|&on_front| dominates(coordinates(on_front), coordinates(index))),
                    "{} is off the front but no front point dominates it", points[index].id
                );
            }
            let energies: Vec<f64> = front.iter().map(|&index| coordinates(index).1).collect();
            prop_assert!(energies.windows(2).all(|pair| pair[0] <= pair[1]));
        }

        #[test]
        fn min_energy_at_is_the_least_energy_that_qualifies(
            points in random_points(),
            target in 75.0f64..100.0,
            bits in prop::option::of(1u32..=16),
        ) {
            let qualifies = |point: &PointResult| {
                point.integer_accuracy >= target && bits.is_none_or(|bits| point.bits == bits)
            };
            let least = points
                .iter()
                .filter(|point| qualifies(point))
                .map(|point| point.energy["p"])
                .min_by(f64::total_cmp);
            match min_energy_at(&points, "p", target, bits) {
                None => prop_assert!(least.is_none()),
                Some(chosen) => {
                    prop_assert!(qualifies(&points[chosen]));
                    prop_assert_eq!(Some(points[chosen].energy["p"]), least);
                }
            }
        }
    }
}
