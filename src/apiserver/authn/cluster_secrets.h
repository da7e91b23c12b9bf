// Cluster secrets: what every server of one cluster must hold alike — the
// cluster CA and its key, the front proxy's CA, the service-account signing
// key and the admin token — kept in the store, so that a second server joins
// with the store's address and a token alone (K3s' bootstrap data). They are
// sealed with the server token: AES-256-GCM under a key derived from it by
// PBKDF2-HMAC-SHA256 (OpenSSL), so the store's readers (an etcd backup, a
// member's disk) hold nothing usable without the token.
//
// The first server of a cluster creates them in its data directory (as a
// single server does), makes a token unless given one (--token), writes it to
// DATA_DIR/tls/server-token (0600) and puts the sealed files in the store.
// Every later start, on any server, writes the store's files into its data
// directory; certificates signed by a CA they replace are reissued by
// LoadOrCreateCredentials.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace kiso::apiserver {

// The store key: outside /registry/, so the API never serves it.
inline constexpr const char* kClusterSecretsKey = "/kiso/cluster-secrets";

struct ClusterSecretsOptions {
  std::string data_dir;
  std::string token;  // --token; empty: DATA_DIR/tls/server-token, else a new one.
  bool join = false;  // --join: the store must hold a cluster's secrets already.
};

// What ShareClusterSecrets did: "created" (this server began the cluster) or
// "joined" (it took the store's), and the token.
struct SharedSecrets {
  bool created = false;
  std::string token;
};

// Unauthenticated when the token does not open the store's secrets (or none
// is given and this data directory has none); FailedPrecondition-like
// InvalidArgument with --join and no cluster in the store.
Result<SharedSecrets> ShareClusterSecrets(store::Store* store,
                                          const ClusterSecretsOptions& options);

// The sealing itself (tests): `plaintext` under `token`, and back.
Result<std::string> SealWithToken(const std::string& token, const std::string& plaintext,
                                  int iterations);
Result<std::string> OpenWithToken(const std::string& token, const std::string& sealed);

}  // namespace kiso::apiserver
