//! flashvol-flex: the FlexVolume driver kubelet runs as `<plugin dir>/pure~flex/flex`.

fn main() {
    println!(r#"{{"status":"Not supported","message":"flashvol-flex is being built"}}"#);
}
