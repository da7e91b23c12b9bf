// SealRecords: the session writes its records into a sink BIO, put in place
// of Asio's buffer pair for as long as one call takes.
#include "apiserver/http/tls_records.h"

#include <openssl/bio.h>
#include <openssl/err.h>

namespace kiso::apiserver {

namespace {

// A BIO that appends whatever is written to it to the std::string it holds.
int AppendWrite(BIO* bio, const char* data, int size) {
  static_cast<std::string*>(BIO_get_data(bio))->append(data, static_cast<size_t>(size));
  return size;
}

long AppendCtrl(BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // Nothing pending: every write is taken whole.
}

const BIO_METHOD* AppendMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kiso append");
    if (m != nullptr) {
      BIO_meth_set_write(m, AppendWrite);
      BIO_meth_set_ctrl(m, AppendCtrl);
    }
    return m;
  }();
  return method;
}

}  // namespace

Sealed SealRecords(SSL* ssl, std::string_view plain, std::string& sealed) {
  BIO* pair = SSL_get_wbio(ssl);
  const BIO_METHOD* method = AppendMethod();
  if (plain.empty() || method == nullptr || pair == nullptr || SSL_is_init_finished(ssl) != 1 ||
      BIO_wpending(pair) != 0 || SSL_get_wbio(ssl) != SSL_get_rbio(ssl)) {
    return Sealed::kNotNow;
  }
  BIO* sink = BIO_new(method);
  if (sink == nullptr) return Sealed::kNotNow;
  const size_t before = sealed.size();
  BIO_set_data(sink, &sealed);
  BIO_set_init(sink, 1);
  // The session holds two references to the pair (as its reading and its
  // writing BIO); putting the sink in drops one, putting the pair back takes
  // one again and frees the sink.
  SSL_set0_wbio(ssl, sink);
  bool ok = true;
  for (size_t done = 0; ok && done < plain.size();) {
    size_t written = 0;
    ok = SSL_write_ex(ssl, plain.data() + done, plain.size() - done, &written) == 1;
    done += written;
  }
  BIO_up_ref(pair);
  SSL_set0_wbio(ssl, pair);
  if (ok) return Sealed::kDone;
  // Records may have been sealed (their sequence numbers spent): the session
  // cannot go on.
  sealed.resize(before);
  ERR_clear_error();
  return Sealed::kBroken;
}

}  // namespace kiso::apiserver
