package quictr

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"time"
)

// newTLS returns the server and client TLS configurations of one
// Transport: an ephemeral self-signed Ed25519 certificate, and a client
// that accepts any certificate.
//
// QUIC requires TLS 1.3, but TLS authenticates nothing here: the link layer
// runs a Noise IK handshake bound to the network name over the stream
// (overlay/link), which authenticates the peer's link key. A certificate
// check would add no security and would need a PKI darkmatter does not
// have; so the client skips verification (InsecureSkipVerify, plus a
// VerifyConnection that accepts) and the certificate is never reused
// across Transports, so it links nothing between them.
func newTLS() (server, client *tls.Config, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		DNSNames:     []string{"darkmatter"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
	server = &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPN},
		MinVersion:   tls.VersionTLS13,
	}
	client = &tls.Config{
		ServerName:         "darkmatter",
		NextProtos:         []string{ALPN},
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the Noise handshake above authenticates
		VerifyConnection:   func(tls.ConnectionState) error { return nil },
	}
	return server, client, nil
}
