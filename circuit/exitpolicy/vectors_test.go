package exitpolicy

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/darkmatter/darkmatter/internal/testvec"
)

// vectorsFile is the JSON test vector file in spec/vectors shared with
// spec/exit-policy.md.
const vectorsFile = "exit-policy.json"

type policyVectors struct {
	Comment   string `json:"comment"`
	Canonical []struct {
		Input     string `json:"input"`
		Canonical string `json:"canonical"`
	} `json:"canonical"`
	Bad     []string `json:"bad"`
	Private []struct {
		Addr    string `json:"addr"`
		Private string `json:"private"`
	} `json:"private"`
	Decisions []struct {
		Policy string   `json:"policy"`
		Own    []string `json:"own,omitempty"`
		Addr   string   `json:"addr"`
		Port   uint16   `json:"port"`
		Allows string   `json:"allows"`
	} `json:"decisions"`
	Ports []struct {
		Policy     string   `json:"policy"`
		Own        []string `json:"own,omitempty"`
		Port       uint16   `json:"port"`
		AllowsPort string   `json:"allows_port"`
		IsExit     string   `json:"is_exit"`
	} `json:"ports"`
}

// TestVectors checks spec/vectors/exit-policy.json. With -update it
// regenerates the inputs from generateVectors, recomputes every output
// and rewrites the file.
func TestVectors(t *testing.T) {
	v := testvec.LoadOrGenerate(t, vectorsFile, generateVectors)
	for i := range v.Canonical {
		c := &v.Canonical[i]
		p, err := Parse(c.Input)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.Input, err)
			continue
		}
		testvec.Check(t, "canonical of "+strconv.Quote(c.Input), &c.Canonical, p.String())
	}
	for _, s := range v.Bad {
		if p, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %q, want an error", s, p)
		}
	}
	for i := range v.Private {
		c := &v.Private[i]
		testvec.Check(t, "private "+c.Addr, &c.Private, strconv.FormatBool(IsPrivate(netip.MustParseAddr(c.Addr))))
	}
	for i := range v.Decisions {
		c := &v.Decisions[i]
		p := vectorPolicy(t, c.Policy, c.Own)
		testvec.Check(t, c.Policy+" allows "+c.Addr, &c.Allows, strconv.FormatBool(p.Allows(netip.MustParseAddr(c.Addr), c.Port)))
	}
	for i := range v.Ports {
		c := &v.Ports[i]
		p := vectorPolicy(t, c.Policy, c.Own)
		testvec.Check(t, c.Policy+" allows port", &c.AllowsPort, strconv.FormatBool(p.AllowsPort(c.Port)))
		testvec.Check(t, c.Policy+" is exit", &c.IsExit, strconv.FormatBool(p.IsExit()))
	}
	if testvec.Update() && !t.Failed() {
		testvec.Save(t, vectorsFile, v)
	}
}

// vectorPolicy parses s and adds the own addresses.
func vectorPolicy(t *testing.T, s string, own []string) *Policy {
	t.Helper()
	p, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	if own == nil {
		return p
	}
	var addrs []netip.Addr
	for _, a := range own {
		addrs = append(addrs, netip.MustParseAddr(a))
	}
	return p.WithOwnAddrs(addrs...)
}

// generateVectors returns the inputs of spec/vectors/exit-policy.json.
func generateVectors() *policyVectors {
	v := &policyVectors{Comment: "darkmatter exit policy vectors (spec/exit-policy.md). canonical: input policy and its canonical form (§1, §4). bad: policies Parse must refuse. private: whether an address is in the private set (§3). decisions: whether the policy, at an exit whose own addresses are 'own' (§3.1), allows addr:port (§2). ports: AllowsPort and IsExit (§5). Checked by circuit/exitpolicy TestVectors (go test -run TestVectors -update rewrites this file)."}
	for _, s := range []string{
		"reject private:*,accept *:*", "accept *:*", "reject *:*",
		" Accept 1.2.3.4/8:080-0443 , reject *", "accept [2001:DB8::1/128]", "accept [::ffff:1.2.3.4]:80",
		"accept [::ffff:1.2.3.4/120]:80", "REJECT Private:22,accept *:1-1024",
	} {
		v.Canonical = append(v.Canonical, struct {
			Input     string `json:"input"`
			Canonical string `json:"canonical"`
		}{Input: s})
	}
	v.Bad = []string{"", "accept", "accept *:0", "accept *:65536", "accept ::1", "accept [1.2.3.4]",
		"accept [fe80::1%eth0]", "accept localhost:80", "accept 01.2.3.4", "accept *:90-80", "accept *:*,"}
	for _, a := range []string{
		// IPv4, each range and its neighbours where they matter.
		"0.0.0.1", "10.0.0.1", "100.64.0.1", "100.128.0.0", "127.0.0.1", "169.254.169.254", "172.16.0.1",
		"172.32.0.0", "191.255.255.255", "192.0.0.8", "192.0.0.255", "192.0.1.0", "192.0.2.1", "192.0.3.0",
		"192.168.1.1", "198.17.255.255", "198.18.0.1", "198.19.255.255", "198.20.0.0", "198.51.100.1",
		"203.0.113.1", "224.0.0.1", "240.0.0.1", "255.255.255.255", "8.8.8.8",
		// IPv6.
		"::", "::1", "::2", "::1.2.3.4", "::1:0:0", "::ffff:127.0.0.1", "::ffff:8.8.8.8",
		"64:ff9b::7f00:1", "64:ff9b::c612:1", "64:ff9b::808:808", "64:ff9b:1::808:808", "64:ff9b:2::1",
		"100::1", "100:0:0:1::1", "100:0:0:2::1", "2001::1", "2001:1::1", "2001:200::1",
		"2001:db8::1", "2002:a00:1::", "2002:808:808::", "3fff::1", "5f00::1", "2606:4700::1111",
		"fc00::1", "fe80::1", "fec0::1", "ff02::1",
	} {
		v.Private = append(v.Private, struct {
			Addr    string `json:"addr"`
			Private string `json:"private"`
		}{Addr: a})
	}
	type decision = struct {
		Policy string   `json:"policy"`
		Own    []string `json:"own,omitempty"`
		Addr   string   `json:"addr"`
		Port   uint16   `json:"port"`
		Allows string   `json:"allows"`
	}
	own := []string{"1.2.3.4", "2606:4700::1111"}
	for _, d := range []decision{
		{Policy: "reject private:*,accept *:*", Addr: "1.2.3.4", Port: 443},
		{Policy: "reject private:*,accept *:*", Own: own, Addr: "1.2.3.4", Port: 443},
		{Policy: "reject private:*,accept *:*", Own: own, Addr: "::ffff:1.2.3.4", Port: 443},
		{Policy: "reject private:*,accept *:*", Own: own, Addr: "64:ff9b::102:304", Port: 443},
		{Policy: "reject private:*,accept *:*", Own: own, Addr: "2002:102:304::", Port: 443},
		{Policy: "reject private:*,accept *:*", Own: own, Addr: "2606:4700::1111", Port: 80},
		{Policy: "reject private:*,accept *:*", Own: own, Addr: "1.2.3.5", Port: 443},
		{Policy: "reject private:22,accept *:*", Own: own, Addr: "1.2.3.4", Port: 22},
		{Policy: "reject private:22,accept *:*", Own: own, Addr: "1.2.3.4", Port: 80},
		{Policy: "accept *:*", Own: own, Addr: "1.2.3.4", Port: 80},
		{Policy: "accept *:*", Addr: "127.0.0.1", Port: 80},
		{Policy: "reject private:*,accept *:*", Addr: "198.18.0.1", Port: 80},
		{Policy: "reject private:*,accept *:*", Addr: "::8.8.8.8", Port: 80},
		{Policy: "reject private:*,accept *:*", Addr: "8.8.8.8", Port: 0},
		{Policy: "accept 1.2.0.0/16:1000-2000,reject *:*", Addr: "1.2.3.4", Port: 2000},
		{Policy: "accept 1.2.0.0/16:1000-2000,reject *:*", Addr: "1.2.3.4", Port: 2001},
	} {
		v.Decisions = append(v.Decisions, d)
	}
	type ports = struct {
		Policy     string   `json:"policy"`
		Own        []string `json:"own,omitempty"`
		Port       uint16   `json:"port"`
		AllowsPort string   `json:"allows_port"`
		IsExit     string   `json:"is_exit"`
	}
	for _, p := range []ports{
		{Policy: "reject private:*,accept *:*", Port: 443},
		{Policy: "reject *:*", Port: 443},
		{Policy: "accept private:*,reject *:*", Port: 80},
		{Policy: "accept private:80,reject *:*", Own: own, Port: 80},
		{Policy: "reject *:25,accept *:*", Port: 25},
		{Policy: "reject 0.0.0.0/0:*,accept *:443", Port: 443},
	} {
		v.Ports = append(v.Ports, p)
	}
	return v
}
