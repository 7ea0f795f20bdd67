use super::*;
use crate::sampling::rng_from_seed;

fn disk(name: &str, center: [f64; 2], radius: f64) -> (String, Shape) {
    (
        name.into(),
        Shape::Ball(Ball::new(name, &center, radius).expect("a disk")),
    )
}

fn rectangle(name: &str, lower: [f64; 2], upper: [f64; 2]) -> (String, Shape) {
    (
        name.into(),
        Shape::Cuboid(Cuboid::new(name, &lower, &upper).expect("a rectangle")),
    )
}

/// The unit square with four holes of radius 0.1 (the plate of `plate_holes.toml`).
fn plate() -> Region {
    let mut shapes = vec![rectangle("plate", [0.0, 0.0], [1.0, 1.0])];
    for (i, c) in [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
        .into_iter()
        .enumerate()
    {
        shapes.push(disk(&format!("hole{}", i + 1), c, 0.1));
    }
    Region::new("plate - hole1 - hole2 - hole3 - hole4", shapes).expect("the plate")
}

fn rows(v: &[f64], dim: usize) -> impl Iterator<Item = &[f64]> {
    v.chunks_exact(dim)
}

#[test]
fn every_primitive_draws_boundary_points_on_it_with_its_analytic_normal() {
    let shapes = [
        Shape::Cuboid(Cuboid::new("i", &[-1.0], &[2.0]).expect("interval")),
        Shape::Cuboid(Cuboid::new("r", &[0.0, 1.0], &[2.0, 1.5]).expect("rectangle")),
        Shape::Cuboid(Cuboid::new("b", &[0.0, 0.0, 0.0], &[1.0, 2.0, 3.0]).expect("box")),
        Shape::Ball(Ball::new("d", &[0.5, -0.5], 0.3).expect("disk")),
        Shape::Ball(Ball::new("s", &[0.0, 1.0, 2.0], 2.0).expect("sphere")),
        Shape::Ellipse(Ellipse::new("e", &[1.0, 0.0], &[2.0, 0.5]).expect("ellipse")),
        Shape::Polygon(
            Polygon::new("p", &[vec![0.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0]])
                .expect("a clockwise triangle"),
        ),
        Shape::Cylinder(Cylinder::new("c", &[0.0, 0.0, 1.0], 0.5, 2.0, 2).expect("cylinder")),
    ];
    let mut rng = rng_from_seed(5);
    for shape in &shapes {
        let dim = shape.dim();
        let (mut p, mut n) = (vec![0.0; dim], vec![0.0; dim]);
        for _ in 0..500 {
            shape.boundary_point(&mut rng, &mut p, &mut n);
            assert!(
                shape.signed_distance(&p).abs() < 1e-12,
                "{shape:?} at {p:?}"
            );
            let norm: f64 = n.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12, "{shape:?}: |n| = {norm}");
            // Outward: a step along the normal leaves the shape, a step against it enters.
            let step = |s: f64| -> Vec<f64> { p.iter().zip(&n).map(|(x, v)| x + s * v).collect() };
            assert!(
                shape.signed_distance(&step(1e-6)) > 0.0,
                "{shape:?} at {p:?}"
            );
            assert!(
                shape.signed_distance(&step(-1e-6)) < 0.0,
                "{shape:?} at {p:?}"
            );
            // Perpendicular to the boundary: the analytic normal of the smooth shapes.
            let analytic: Option<Vec<f64>> = match shape {
                Shape::Ball(_) => {
                    let c: Vec<f64> = if dim == 2 {
                        vec![0.5, -0.5]
                    } else {
                        vec![0.0, 1.0, 2.0]
                    };
                    let d: Vec<f64> = p.iter().zip(&c).map(|(x, c)| x - c).collect();
                    let r = d.iter().map(|v| v * v).sum::<f64>().sqrt();
                    Some(d.iter().map(|v| v / r).collect())
                }
                Shape::Ellipse(_) => {
                    let g = [(p[0] - 1.0) / 4.0, p[1] / 0.25];
                    let r = g[0].hypot(g[1]);
                    Some(vec![g[0] / r, g[1] / r])
                }
                _ => None,
            };
            if let Some(a) = analytic {
                let gap: f64 = a.iter().zip(&n).map(|(x, y)| (x - y).abs()).sum();
                assert!(gap < 1e-12, "{shape:?} at {p:?}: {n:?} vs {a:?}");
            }
        }
    }
}

#[test]
fn boundary_points_of_a_plate_with_holes_lie_on_it_shared_by_length() {
    let region = plate();
    let n = 20_000;
    let b = region
        .boundary_points(None, n, &mut rng_from_seed(1))
        .expect("points");
    assert_eq!(b.parts.len(), n);
    let mut on_holes = 0;
    for ((p, normal), &part) in rows(&b.points, 2).zip(rows(&b.normals, 2)).zip(&b.parts) {
        let shape = &region.shapes[part];
        assert!(shape.signed_distance(p).abs() < 1e-12);
        if part > 0 {
            // A hole's boundary: the region's outward normal points into the hole.
            on_holes += 1;
            let centre_ward =
                shape.signed_distance(&[p[0] - 1e-6 * normal[0], p[1] - 1e-6 * normal[1]]);
            assert!(centre_ward > 0.0, "normal at {p:?} points out of the hole");
        }
    }
    // Four circles of circumference 0.2π beside a perimeter of 4.
    let expected = 0.8 * std::f64::consts::PI / (4.0 + 0.8 * std::f64::consts::PI);
    let share = on_holes as f64 / n as f64;
    assert!((share - expected).abs() < 0.01, "{share} vs {expected}");
    // Seeded: the same draws again.
    let again = region
        .boundary_points(None, n, &mut rng_from_seed(1))
        .expect("again");
    assert_eq!(again, b);
}

#[test]
fn interior_points_are_inside_exactly_as_many_as_asked_and_uniform() {
    let region = plate();
    for layout in [InteriorLayout::Lhs(5000), InteriorLayout::Uniform(5000)] {
        let points = region
            .interior_points(&layout, &mut rng_from_seed(2))
            .expect("points");
        assert_eq!(points.len(), 2 * 5000, "{layout:?}");
        assert!(rows(&points, 2).all(|p| region.contains(p)));
        // Uniform over the region: the left half holds half of them.
        let left = rows(&points, 2).filter(|p| p[0] < 0.5).count() as f64 / 5000.0;
        assert!((left - 0.5).abs() < 0.03, "{layout:?}: {left}");
    }
    let grid = region
        .interior_points(&InteriorLayout::Grid(vec![41, 41]), &mut rng_from_seed(2))
        .expect("grid");
    let inside = grid.len() / 2;
    // The open square's 39² grid points, less those in the holes (about 4 · π · 0.1² · 40²).
    assert!(inside < 39 * 39 && inside > 39 * 39 - 220, "{inside}");
}

#[test]
fn named_parts_and_shared_edges() {
    // An L-shape as two rectangles sharing the edge x = 1, 0 < y < 1: that edge is inside.
    let l = Region::new(
        "a + b",
        vec![
            rectangle("a", [0.0, 0.0], [2.0, 1.0]),
            rectangle("b", [0.0, 1.0], [1.0, 2.0]),
        ],
    )
    .expect("L");
    let b = l
        .boundary_points(None, 4000, &mut rng_from_seed(3))
        .expect("points");
    for p in rows(&b.points, 2) {
        assert!(
            !(p[1] - 1.0).abs().lt(&1e-9) || p[0] >= 1.0 - 1e-9,
            "inner edge point {p:?}"
        );
        assert!(
            !((p[0] - 1.0).abs() < 1e-9 && p[1] < 1.0),
            "inner edge point {p:?}"
        );
    }
    // A named part: only the hole, normals into it.
    let region = plate();
    let hole = region
        .boundary_points(Some(&["hole2".to_string()]), 100, &mut rng_from_seed(4))
        .expect("hole2");
    assert!(hole.parts.iter().all(|&p| region.names()[p] == "hole2"));
    // A hole outside the plate does not bound it, and an intersection can be empty.
    let outside = Region::new(
        "plate - far",
        vec![
            rectangle("plate", [0.0, 0.0], [1.0, 1.0]),
            disk("far", [3.0, 3.0], 0.5),
        ],
    )
    .expect("region");
    let error = outside
        .boundary_points(Some(&["far".to_string()]), 10, &mut rng_from_seed(0))
        .expect_err("far bounds nothing");
    assert!(
        error.to_string().contains("`far` does not bound"),
        "{error}"
    );
    let empty = Region::new(
        "a & b",
        vec![disk("a", [0.0, 0.0], 1.0), disk("b", [1.5, 0.0], 0.4)],
    )
    .expect("region");
    let error = empty
        .interior_points(&InteriorLayout::Lhs(10), &mut rng_from_seed(0))
        .expect_err("empty");
    assert!(error.to_string().contains("is empty"), "{error}");
}

#[test]
fn bad_shapes_and_expressions_are_named() {
    let cases: Vec<(Result<Shape, GeometryError>, &str)> = vec![
        (
            Ball::new("h", &[0.0, 0.0], 0.0).map(Shape::Ball),
            "shape `h`: radius must be finite and > 0",
        ),
        (
            Ball::new("h", &[0.0, 0.0], f64::NAN).map(Shape::Ball),
            "radius must be finite",
        ),
        (
            Cuboid::new("r", &[0.0, 1.0], &[1.0, 1.0]).map(Shape::Cuboid),
            "every side",
        ),
        (
            Polygon::new("p", &[vec![0.0, 0.0], vec![1.0, 0.0]]).map(Shape::Polygon),
            "at least 3 vertices (got 2)",
        ),
        (
            Polygon::new(
                "bow",
                &[
                    vec![0.0, 0.0],
                    vec![1.0, 1.0],
                    vec![1.0, 0.0],
                    vec![0.0, 1.0],
                ],
            )
            .map(Shape::Polygon),
            "edges 0 and 2 cross",
        ),
        (
            Ellipse::new("e", &[0.0, 0.0], &[1.0, -1.0]).map(Shape::Ellipse),
            "semi-axes must be",
        ),
        (
            Cylinder::new("c", &[0.0, 0.0], 1.0, 1.0, 2).map(Shape::Cylinder),
            "3-D center",
        ),
    ];
    for (result, expected) in cases {
        let error = result.expect_err(expected).to_string();
        assert!(error.contains(expected), "{error}");
    }
    let shapes = || {
        vec![
            rectangle("plate", [0.0, 0.0], [1.0, 1.0]),
            disk("hole", [0.5, 0.5], 0.1),
        ]
    };
    for (text, expected) in [
        ("plate - hloe", "no shape is named `hloe`"),
        ("plate - ", "ends where a shape name"),
        ("(plate - hole", "not closed"),
        ("plate hole", "unexpected `h` at column 7"),
        ("plate * hole", "unexpected `*`"),
    ] {
        let error = Region::new(text, shapes()).expect_err(text).to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
    let mixed = Region::new(
        "a - b",
        vec![
            rectangle("a", [0.0, 0.0], [1.0, 1.0]),
            (
                "b".into(),
                Shape::Ball(Ball::new("b", &[0.0, 0.0, 0.0], 1.0).expect("sphere")),
            ),
        ],
    )
    .expect_err("2-D and 3-D");
    assert!(
        mixed.to_string().contains("`a` is 2-D but `b` is 3-D"),
        "{mixed}"
    );
}

#[test]
fn expressions_group_as_written() {
    use RegionExpr::*;
    let s = |n: &str| Box::new(Shape(n.into()));
    assert_eq!(
        RegionExpr::parse("a - b - c").expect("parses"),
        Difference(Box::new(Difference(s("a"), s("b"))), s("c"))
    );
    assert_eq!(
        RegionExpr::parse("a | b & c").expect("parses"),
        Union(s("a"), Box::new(Intersection(s("b"), s("c"))))
    );
    assert_eq!(
        RegionExpr::parse("(a + b) & c").expect("parses"),
        Intersection(Box::new(Union(s("a"), s("b"))), s("c"))
    );
}
