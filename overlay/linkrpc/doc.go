// Package linkrpc carries request/response messages between two linked
// nodes on circuit 0 of their link, one cell command per use (the DHT
// cells of spec/dht.md; the framing is spec/linkrpc.md). A message longer than a cell is split into
// fragments; every resource a peer can make a node hold for it (messages
// being reassembled, requests being handled, cells queued) has a bound.
//
// It knows nothing of what the messages mean: a Handler answers requests.
package linkrpc
