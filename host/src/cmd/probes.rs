//! `patchbench probes`: the debug probes attached to this host.

#[derive(clap::Parser)]
pub struct Cmd {}

impl Cmd {
    pub fn run(self) -> anyhow::Result<()> {
        let probes = patchbench::deploy::probe::list();
        if probes.is_empty() {
            println!("no debug probe is attached (USB ST-LINK, J-Link, CMSIS-DAP, ...); QEMU boards need none");
            println!("on Linux, a probe that is plugged in but not listed usually lacks a udev rule: see https://probe.rs/docs/getting-started/probe-setup/");
            return Ok(());
        }
        println!("{:<22} {:<28} identifier", "--probe", "serial");
        for p in probes {
            let id = format!("{:04x}:{:04x}", p.vendor_id, p.product_id);
            let serial = p.serial_number.clone().unwrap_or_default();
            let selector = if serial.is_empty() { id.clone() } else { format!("{id}:{serial}") };
            println!("{:<22} {:<28} {}", selector, serial, p.identifier);
        }
        Ok(())
    }
}
