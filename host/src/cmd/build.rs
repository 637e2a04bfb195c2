//! `patchbench build`: one image, built (or taken from the cache) but not deployed.

use super::ImageArgs;
use anyhow::Context;
use patchbench::firmware::{self, Build};
use patchbench::report::thousands;

#[derive(clap::Parser)]
pub struct Cmd {
    #[command(flatten)]
    image: ImageArgs,
}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let board = self.image.board()?;
        let m = self.image.model.load()?;
        let p = self.image.config.plan(&m.as_model()).with_context(|| format!("planning {}", m.name))?;
        let config = self.image.config.config()?.effective();
        match firmware::build(&m.as_model(), &p, &board, self.image.repeats, 0)? {
            Build::Image(image) => {
                println!(
                    "{} for {} (split {} {}, input in {})",
                    m.name, board.name, config.split, config.grid, config.input_in
                );
                println!(
                    "flash {} B of {} B; RAM: arena {} B + static {} B + stack reserve {} B of {} B",
                    thousands(image.flash_bytes),
                    thousands(u64::from(board.flash.length)),
                    thousands(p.arena_peak_bytes as u64),
                    thousands(image.static_ram_bytes),
                    thousands(u64::from(board.stack_reserve)),
                    thousands(u64::from(board.ram.length))
                );
                println!("{}{}", image.elf.display(), if image.cached { " (cached)" } else { "" });
                Ok(())
            }
            Build::DoesNotFit { region, needed } => {
                let have = if region == "FLASH" { board.flash.length } else { board.ram.length };
                println!(
                    "does-not-fit: {region} needs {} B, {} has {} B",
                    thousands(needed),
                    board.name,
                    thousands(u64::from(have))
                );
                Ok(())
            }
        }
    }
}
