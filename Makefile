# Convenience targets; README.md has the two set-up commands.
.PHONY: test ci bench bench-crypto bench-link bench-circuit bench-e2e bench-hostile

test:
	go test -race ./...

ci:
	./.ci/run

# Codec and crypto microbenchmarks (allocations per op must be 0).
bench-crypto:
	go test -run '^$$' -bench . -benchmem ./crypto/... ./circuit/cell/

# Link throughput and handshake over memnet and loopback TCP.
bench-link:
	go test -run '^$$' -bench . -benchmem ./overlay/link/

# 3-hop download and build time over memnet and loopback TCP, next to a
# direct connection measured in the same run.
bench-circuit:
	go test -run '^$$' -bench . -benchtime 10x ./overlay/

# The end-to-end tool: direct TCP vs 3-hop, TTFB, build time, relay memory.
bench-e2e:
	go run ./cmd/darkmatter bench

# Attacks on a relay: a legitimate client's TTFB under a CREATE flood, and
# queued circuits against the memory budget (overlay/hostile).
bench-hostile:
	go test -run '^$$' -bench . -benchtime 1x ./overlay/hostile/

bench: bench-crypto bench-link bench-circuit bench-e2e bench-hostile
