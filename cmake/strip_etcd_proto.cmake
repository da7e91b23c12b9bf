# Copies one of etcd's .proto files (as Debian ships them in golang-etcd-server-dev)
# without the Go-only annotations: gogoproto options and google.api.http
# gateway options. The wire format is unchanged.
#   cmake -DIN=src.proto -DOUT=dst.proto -P strip_etcd_proto.cmake
file(READ "${IN}" text)
string(REGEX REPLACE "import \"gogoproto/gogo.proto\";" "" text "${text}")
string(REGEX REPLACE "import \"google/api/annotations.proto\";" "" text "${text}")
string(REGEX REPLACE "option \\(gogoproto\\.[a-z_]+\\) = [a-z]+;" "" text "${text}")
string(REGEX REPLACE "option \\(google\\.api\\.http\\) = {([^{}]|{[^{}]*})*};" "" text "${text}")
file(WRITE "${OUT}" "${text}")
