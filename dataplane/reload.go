package dataplane

import (
	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
)

// Reload applies cfg: new rules, port mappings, timeouts and ALG policy
// apply to new sessions; existing sessions keep theirs.
func (d *Dataplane) Reload(cfg *config.Config) error {
	if err := d.nat.Reload(natRules(cfg)); err != nil {
		return err
	}
	public := publicAddrs(cfg)
	for _, ic := range cfg.Interfaces {
		if ic.Role == config.RoleOutside {
			for _, a := range public {
				if err := d.addrs.Add(ic.Name, a); err != nil {
					d.log.Warn("public address", "addr", a, "err", err)
				}
			}
		}
	}
	f, err := filter(cfg, public, d.addrs)
	if err != nil {
		return err
	}
	for _, iface := range d.ifaces {
		if err := iface.SetFilter(f); err != nil {
			return err
		}
	}
	if d.ftp != nil {
		d.ftp.SetPolicy(alg.Policy{AllowThirdParty: cfg.ALG.FTP.AllowThirdParty, MaxExpectations: cfg.ALG.FTP.MaxExpectations})
	} else if cfg.ALG.FTP.Enabled {
		d.log.Warn("[alg.ftp] enabled takes effect at restart: the ALG was off when fastnat started")
	}
	d.public = public
	d.cfg.Store(cfg)
	return nil
}
