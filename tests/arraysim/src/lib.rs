//! flashvol-arraysim: HTTPS simulator of Pure FlashArray and FlashBlade REST 1.x.
