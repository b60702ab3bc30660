//! The colours of precisions, shared by the sweep's plots and the IR's DOT graph, so that a
//! precision looks the same in every figure qnnc draws.

/// The colour of 1 to 16 bits: distinct hues, the most distinct for the usual 1, 2, 4, 8 and 16
/// bits, none of them the black of the Pareto front.
const PRECISION_COLOURS: [(u8, u8, u8); 16] = [
    (204, 51, 17),   // 1
    (0, 119, 187),   // 2
    (238, 119, 51),  // 3
    (0, 153, 136),   // 4
    (153, 153, 51),  // 5
    (51, 187, 238),  // 6
    (102, 51, 0),    // 7
    (170, 51, 119),  // 8
    (68, 170, 119),  // 9
    (136, 34, 85),   // 10
    (221, 170, 51),  // 11
    (51, 34, 136),   // 12
    (238, 102, 119), // 13
    (17, 119, 51),   // 14
    (187, 187, 187), // 15
    (68, 68, 68),    // 16
];
/// Any other precision.
const OTHER_COLOUR: (u8, u8, u8) = (119, 119, 119);

/// The colour of `bits` as red, green and blue; any bits outside 1 to 16 are grey.
pub fn precision_rgb(bits: u32) -> (u8, u8, u8) {
    let index = usize::try_from(bits).map_or(usize::MAX, |bits| bits.wrapping_sub(1));
    PRECISION_COLOURS
        .get(index)
        .copied()
        .unwrap_or(OTHER_COLOUR)
}
