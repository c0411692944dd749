// Endpoint: config's name for the net module's typed "host:port" address
// (gossip/net/endpoint.hpp), used by listen, advertise and bootstrap. One
// type from the config file to Node::dial.
#pragma once

#include "gossip/net/endpoint.hpp"

namespace gossip::config {

using net::Endpoint;
using net::parse_endpoint;

}  // namespace gossip::config
