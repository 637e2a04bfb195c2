//! `patchbench boards`.

#[derive(clap::Parser)]
pub struct Cmd {}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        println!(
            "{:<14} {:<26} {:<10} {:>9} {:>9} {:<12}  description",
            "board", "target", "cpu", "RAM KiB", "MHz", "counts"
        );
        for b in patchbench::boards::all()? {
            println!(
                "{:<14} {:<26} {:<10} {:>9} {:>9} {:<12}  {}",
                b.name,
                b.target,
                b.cpu,
                b.ram.length / 1024,
                b.clock_hz / 1_000_000,
                b.cycle_source.unit(),
                b.description
            );
        }
        Ok(())
    }
}
