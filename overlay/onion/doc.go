// Package onion runs hidden services and connects to them (spec/
// hidden-services.md): a Service keeps introduction points, publishes its
// encrypted descriptor in the DHT under the blinded key of each time period
// and meets clients at rendezvous relays; a Client fetches descriptors,
// introduces itself and opens streams on the joined circuit. Both ends get
// their circuits and DHT access from an Env (the overlay Node), and every
// circuit they use is their own, so neither learns where the other is.
package onion
