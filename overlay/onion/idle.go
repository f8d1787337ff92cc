package onion

import (
	"context"
	"time"

	"github.com/darkmatter/darkmatter/circuit"
)

// idleCheck is how often a joined circuit is checked for streams.
const idleCheck = 5 * time.Second

// closeWhenIdle closes cc once it has carried no stream for idle, or when
// ctx ends; it returns when cc is done. Joined circuits cost both ends and
// the rendezvous relay, so neither end keeps one it does not use.
func closeWhenIdle(ctx context.Context, cc *circuit.ClientCirc, idle time.Duration) {
	t := time.NewTicker(min(idleCheck, idle))
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-cc.Done():
			return
		case <-ctx.Done():
			cc.Close()
			return
		case now := <-t.C:
			if cc.Streams() > 0 {
				last = now
			} else if now.Sub(last) >= idle {
				cc.Close()
				return
			}
		}
	}
}
