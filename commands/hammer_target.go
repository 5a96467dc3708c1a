package commands

import (
	"slices"

	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// What hammer sends a --target service (any HTTP service on loopback), and how the
// identities reach the nodes: HammerOptions.Path, Headers, Identity and DenyStatus.

// forTargetsOnly reports that o sets a request option that only --target uses: the
// in-process nodes serve ratelab's path and deny with 429.
func (o HammerOptions) forTargetsOnly() bool {
	return (o.Path != "" && o.Path != scenario.DefaultPath) || len(o.Headers) > 0 ||
		(len(o.DenyStatus) > 0 && !slices.Equal(o.DenyStatus, []int{scenario.DefaultDenyStatus}))
}

// validateRequests checks --path, -H, --identity and --deny-status.
func (o HammerOptions) validateRequests() error {
	if err := scenario.CheckIdentityMode(o.Identity); err != nil {
		return Usagef("--identity: %v", err)
	}
	if len(o.Targets) == 0 && o.forTargetsOnly() {
		return Usagef("--path, -H and --deny-status are for --target: the in-process nodes serve %s and deny with %d",
			scenario.DefaultPath, scenario.DefaultDenyStatus)
	}
	if _, err := scenario.ParsePathTemplate(o.Path); err != nil {
		return Usagef("--path: %v (e.g. --path '/api/items/{product}')", err)
	}
	if _, err := o.headers(); err != nil {
		return err
	}
	for _, code := range o.DenyStatus {
		if err := scenario.CheckDenyStatus(code); err != nil {
			return Usagef("--deny-status: %v", err)
		}
	}
	if o.Identity == scenario.IdentitySource {
		nodes := o.Nodes
		if len(o.Targets) > 0 {
			nodes = len(o.Targets)
		}
		if o.IPs*nodes > MaxHammerWorkers {
			return Usagef("--identity source keeps a connection per identity and node: --ips %d × %d node(s) is more than %d connections; lower --ips",
				o.IPs, nodes, MaxHammerWorkers)
		}
	}
	return nil
}

// headers parses -H.
func (o HammerOptions) headers() ([]scenario.Header, error) {
	hs := make([]scenario.Header, 0, len(o.Headers))
	for _, raw := range o.Headers {
		h, err := scenario.ParseHeader(raw)
		if err != nil {
			return nil, Usagef("-H: %v", err)
		}
		if o.Identity != scenario.IdentitySource && h.IsForwardedFor() {
			return nil, Usagef("-H %s: hammer sends each identity in X-Forwarded-For; drop the header, or add --identity source", h.Name)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// identities are the run's simulated clients: 10.x.y.z, or 127.x.y.z addresses to
// send from with --identity source.
func (o HammerOptions) identities(salt uint8) ([]string, error) {
	if o.Identity == scenario.IdentitySource {
		return scenario.SourceIdentities(o.IPs, salt)
	}
	return scenario.Identities(o.IPs, salt)
}

// warmIdentityFor is the warm-up's identity: never one of the run's.
func (o HammerOptions) warmIdentityFor() string {
	if o.Identity == scenario.IdentitySource {
		return scenario.SourceWarmIdentity
	}
	return warmIdentity
}

// targetConfig is the scenario.TargetConfig of a run against bases: the in-process
// nodes (ratelab's path and statuses) or the --target URLs.
func (o HammerOptions) targetConfig(bases, ids []string) (scenario.TargetConfig, error) {
	cfg := scenario.TargetConfig{
		Bases: bases, Identities: ids, Conns: o.workers(), Timeout: requestTimeout(o.Policy), Identity: o.Identity,
	}
	if len(o.Targets) == 0 {
		return cfg, nil
	}
	hs, err := o.headers()
	if err != nil {
		return cfg, err
	}
	cfg.Path, cfg.Headers, cfg.DenyStatus = o.Path, hs, o.DenyStatus
	return cfg, nil
}

// describeRequests names, in the report, how the requests were made.
func describeRequests(h *report.Hammer, o HammerOptions) {
	h.Identity = string(o.Identity)
	if h.Identity == "" {
		h.Identity = string(scenario.IdentityForwardedFor)
	}
	if len(o.Targets) == 0 {
		return
	}
	h.Path = o.Path
	if h.Path == "" {
		h.Path = scenario.DefaultPath
	}
	h.DenyStatus = o.DenyStatus
	if len(h.DenyStatus) == 0 {
		h.DenyStatus = []int{scenario.DefaultDenyStatus}
	}
}
