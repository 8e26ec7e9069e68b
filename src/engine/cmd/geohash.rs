//! Redis's geohash arithmetic (`geohash.c`, `geohash_helper.c` of Redis 7.0), ported operation
//! for operation so the GEO commands compute the same 52-bit scores, search boxes and distances
//! as redis-server, bit for bit. Pure.
//!
//! A position is a 52-bit integer: latitude and longitude each scaled to 26 bits over their
//! range (longitude -180..180, latitude -85.05112878..85.05112878, the Web Mercator limits)
//! and interleaved, longitude in the odd bits. Stored as a sorted set score (a double holds 52
//! bits exactly), nearby points have nearby scores, so an area search is a handful of score
//! ranges: the geohash box holding the centre and its eight neighbours, at a precision
//! (`step`) chosen from the radius.

/// Bits per coordinate of a stored score (26 * 2 = 52: what a double holds exactly).
pub const STEP_MAX: u8 = 26;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;

const D_R: f64 = std::f64::consts::PI / 180.0;
/// Earth's quadratic mean radius for WGS-84, the one Redis uses for every distance.
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

/// A geohash of `step` bits per coordinate. Zero bits with zero step is "no box" (an excluded
/// neighbour), as in Redis's `GZERO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashBits {
    pub bits: u64,
    pub step: u8,
}

impl HashBits {
    pub fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The rectangle a geohash stands for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Area {
    pub longitude: Range,
    pub latitude: Range,
}

/// The ranges every stored score is encoded over (EPSG:900913: no poles).
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The ranges of the standard geohash alphabet (GEOHASH's text output).
pub const STANDARD_LAT_RANGE: Range = Range {
    min: -90.0,
    max: 90.0,
};

fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let mut x = xlo as u64;
    let mut y = ylo as u64;
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let mut x = interleaved;
    let mut y = interleaved >> 1;
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

/// `geohashEncode`: None outside the Mercator limits or the given ranges.
pub fn encode(
    long_range: Range,
    lat_range: Range,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<HashBits> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    // Fixed point of `step` bits; C converts the double to uint32_t by truncation.
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(HashBits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

/// The 52-bit score of a position (GEOADD), None outside the Mercator limits.
pub fn encode_score(longitude: f64, latitude: f64) -> Option<u64> {
    encode(LONG_RANGE, LAT_RANGE, longitude, latitude, STEP_MAX).map(align52)
}

/// `geohashDecode`.
pub fn decode(long_range: Range, lat_range: Range, hash: HashBits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let step = hash.step;
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << step) as f64;
    Some(Area {
        latitude: Range {
            min: lat_range.min + (ilato as f64 / div) * lat_scale,
            max: lat_range.min + ((ilato as f64 + 1.0) / div) * lat_scale,
        },
        longitude: Range {
            min: long_range.min + (ilono as f64 / div) * long_scale,
            max: long_range.min + ((ilono as f64 + 1.0) / div) * long_scale,
        },
    })
}

/// The centre of a stored score's box, [longitude, latitude] (`decodeGeohash`).
pub fn decode_score(score: f64) -> Option<[f64; 2]> {
    // C's (uint64_t) conversion of the double; scores written by GEOADD are whole numbers.
    let hash = HashBits {
        bits: score as u64,
        step: STEP_MAX,
    };
    let area = decode(LONG_RANGE, LAT_RANGE, hash)?;
    let lon = ((area.longitude.min + area.longitude.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.latitude.min + area.latitude.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    Some([lon, lat])
}

fn move_x(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let y = hash.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

fn move_y(hash: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let x = hash.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = hash.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> (64 - hash.step as u32 * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> (64 - hash.step as u32 * 2);
    hash.bits = x | y;
}

/// The eight boxes around one, in Redis's search order after the centre.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neighbors {
    pub north: HashBits,
    pub south: HashBits,
    pub east: HashBits,
    pub west: HashBits,
    pub north_east: HashBits,
    pub north_west: HashBits,
    pub south_east: HashBits,
    pub south_west: HashBits,
}

fn neighbors(hash: HashBits) -> Neighbors {
    let at = |dx: i8, dy: i8| {
        let mut h = hash;
        move_x(&mut h, dx);
        move_y(&mut h, dy);
        h
    };
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        north_east: at(1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

/// `geohashEstimateStepsByRadius`: the coarsest precision whose boxes still cover the radius.
fn estimate_steps_by_radius(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut range_meters = range_meters;
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    // Boxes are narrower towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// What a search covers: a circle (radius) or a box (width x height), in the search's unit
/// (`conversion` metres per unit), around `xy` = [longitude, latitude].
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub xy: [f64; 2],
    pub conversion: f64,
    pub kind: ShapeKind,
}

#[derive(Debug, Clone, Copy)]
pub enum ShapeKind {
    Circle { radius: f64 },
    Rectangle { width: f64, height: f64 },
}

/// `geohashBoundingBox`: [min lon, min lat, max lon, max lat].
fn bounding_box(shape: &Shape) -> [f64; 4] {
    let [longitude, latitude] = shape.xy;
    let (height, width) = match shape.kind {
        ShapeKind::Circle { radius } => (shape.conversion * radius, shape.conversion * radius),
        ShapeKind::Rectangle { width, height } => (
            shape.conversion * (height / 2.0),
            shape.conversion * (width / 2.0),
        ),
    };
    let lat_delta = (height / EARTH_RADIUS_IN_METERS) / D_R;
    let long_delta_top =
        (width / EARTH_RADIUS_IN_METERS / ((latitude + lat_delta) * D_R).cos()) / D_R;
    let long_delta_bottom =
        (width / EARTH_RADIUS_IN_METERS / ((latitude - lat_delta) * D_R).cos()) / D_R;
    // The hemispheres bulge in opposite directions: take the wider edge of the two.
    let southern = latitude < 0.0;
    [
        if southern {
            longitude - long_delta_bottom
        } else {
            longitude - long_delta_top
        },
        latitude - lat_delta,
        if southern {
            longitude + long_delta_bottom
        } else {
            longitude + long_delta_top
        },
        latitude + lat_delta,
    ]
}

/// The boxes to scan for a search: the centre's box and its neighbours (zero = skip), as
/// `geohashCalculateAreasByShapeWGS84` picks them.
pub fn areas_by_shape(shape: &Shape) -> [HashBits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = bounding_box(shape);
    let [longitude, latitude] = shape.xy;
    let radius_meters = match shape.kind {
        ShapeKind::Circle { radius } => radius,
        ShapeKind::Rectangle { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, latitude);
    let at = |steps: u8| {
        let hash = encode(LONG_RANGE, LAT_RANGE, longitude, latitude, steps).unwrap_or_default();
        let area = decode(LONG_RANGE, LAT_RANGE, hash).unwrap_or_default();
        (hash, neighbors(hash), area)
    };
    let (mut hash, mut nb, mut area) = at(steps);
    // Near a box's edge the estimated step can leave part of the search area outside the
    // neighbours: then one step coarser.
    let decode_or_default = |h: HashBits| decode(LONG_RANGE, LAT_RANGE, h).unwrap_or_default();
    let decrease_step = decode_or_default(nb.north).latitude.max < max_lat
        || decode_or_default(nb.south).latitude.min > min_lat
        || decode_or_default(nb.east).longitude.max < max_lon
        || decode_or_default(nb.west).longitude.min > min_lon;
    if steps > 1 && decrease_step {
        steps -= 1;
        (hash, nb, area) = at(steps);
    }
    // Leave out the neighbours the search area does not reach.
    if steps >= 2 {
        let zero = HashBits::default();
        if area.latitude.min < min_lat {
            nb.south = zero;
            nb.south_west = zero;
            nb.south_east = zero;
        }
        if area.latitude.max > max_lat {
            nb.north = zero;
            nb.north_east = zero;
            nb.north_west = zero;
        }
        if area.longitude.min < min_lon {
            nb.west = zero;
            nb.south_west = zero;
            nb.north_west = zero;
        }
        if area.longitude.max > max_lon {
            nb.east = zero;
            nb.south_east = zero;
            nb.north_east = zero;
        }
    }
    [
        hash,
        nb.north,
        nb.south,
        nb.east,
        nb.west,
        nb.north_east,
        nb.north_west,
        nb.south_east,
        nb.south_west,
    ]
}

/// The hash aligned to 52 bits: the lowest score of its box.
pub fn align52(hash: HashBits) -> u64 {
    hash.bits << (52 - hash.step as u32 * 2)
}

/// Scores [min, max) of every point inside the box `hash` (`scoresOfGeoHashBox`).
pub fn box_scores(hash: HashBits) -> (f64, f64) {
    let min = align52(hash);
    let max = align52(HashBits {
        bits: hash.bits.wrapping_add(1),
        step: hash.step,
    });
    (min as f64, max as f64)
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * ((lat2d * D_R) - (lat1d * D_R)).abs()
}

/// Haversine great-circle distance in metres (`geohashGetDistance`).
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = lon1d * D_R;
    let lon2r = lon2d * D_R;
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same longitude: the latitude distance alone, without the expensive terms.
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = lat1d * D_R;
    let lat2r = lat2d * D_R;
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

/// The distance from the shape's centre to `xy` in metres when `xy` is inside the shape
/// (`geoWithinShape`).
pub fn within_shape(shape: &Shape, xy: [f64; 2]) -> Option<f64> {
    let [x1, y1] = shape.xy;
    let [x2, y2] = xy;
    match shape.kind {
        ShapeKind::Circle { radius } => {
            let d = distance(x1, y1, x2, y2);
            (d <= radius * shape.conversion).then_some(d)
        }
        ShapeKind::Rectangle { width, height } => {
            let (width_m, height_m) = (width * shape.conversion, height * shape.conversion);
            // The latitude distance is cheaper: checked first, as Redis does.
            if lat_distance(y2, y1) > height_m / 2.0 {
                return None;
            }
            if distance(x2, y2, x1, y2) > width_m / 2.0 {
                return None;
            }
            Some(distance(x1, y1, x2, y2))
        }
    }
}

/// The 11-character standard geohash of a stored score (GEOHASH): decoded, then encoded again
/// over latitude -90..90 (the standard range; stored scores use the Mercator limits).
pub fn standard_geohash(score: f64) -> Option<[u8; 11]> {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [lon, lat] = decode_score(score)?;
    let hash = encode(LONG_RANGE, STANDARD_LAT_RANGE, lon, lat, 26)?;
    let mut out = [b'0'; 11];
    for (i, c) in out.iter_mut().enumerate().take(10) {
        let idx = (hash.bits >> (52 - (i + 1) * 5)) & 0x1f;
        *c = ALPHABET[idx as usize];
    }
    // 52 bits give 10 characters and 2 bits; the 11th is always '0', as in Redis.
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_redis() {
        // Values read from redis-server 7.0.15 (GEOADD, then ZSCORE / GEOPOS / GEOHASH).
        assert_eq!(encode_score(13.361389, 38.115556), Some(3479099956230698));
        let [lon, lat] = decode_score(3479099956230698.0).unwrap();
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
        assert_eq!(
            &standard_geohash(3479099956230698.0).unwrap(),
            b"sqc8b49rny0"
        );
    }

    #[test]
    fn distance_matches_redis() {
        let a = decode_score(3479099956230698.0).unwrap();
        let b = decode_score(3479447370796909.0).unwrap();
        let d = distance(a[0], a[1], b[0], b[1]) / 1000.0;
        assert_eq!((d * 10000.0).round_ties_even() as i64, 1662742);
    }

    #[test]
    fn out_of_range_positions_have_no_score() {
        assert_eq!(encode_score(200.0, 10.0), None);
        assert_eq!(encode_score(10.0, 86.0), None);
        assert!(encode_score(180.0, LAT_MAX).is_some());
    }

    #[test]
    fn interleave_round_trips() {
        for (x, y) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ffffff, 0x1234567),
            (u32::MAX, 7),
        ] {
            let d = deinterleave64(interleave64(x, y));
            assert_eq!((d as u32, (d >> 32) as u32), (x, y));
        }
    }
}
