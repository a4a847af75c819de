/* Hand-written wrappers for what bindgen cannot wrap (see bindings.h), and
 * compile-time checks that the constants written out in src/lib.rs (macros
 * built from RTE_BIT64, which bindgen cannot evaluate) match this DPDK. */
#include "bindings.h"

int moat_rte_errno(void)
{
	return rte_errno;
}

unsigned int moat_lcore_id_any(void)
{
	return LCORE_ID_ANY;
}

_Static_assert(RTE_ETH_RSS_IPV4 == (1ULL << 2), "RTE_ETH_RSS_IPV4");
_Static_assert(RTE_ETH_RSS_FRAG_IPV4 == (1ULL << 3), "RTE_ETH_RSS_FRAG_IPV4");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV4_TCP == (1ULL << 4), "RTE_ETH_RSS_NONFRAG_IPV4_TCP");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV4_UDP == (1ULL << 5), "RTE_ETH_RSS_NONFRAG_IPV4_UDP");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV4_OTHER == (1ULL << 7), "RTE_ETH_RSS_NONFRAG_IPV4_OTHER");
_Static_assert(RTE_ETH_RSS_IPV6 == (1ULL << 8), "RTE_ETH_RSS_IPV6");
_Static_assert(RTE_ETH_RSS_FRAG_IPV6 == (1ULL << 9), "RTE_ETH_RSS_FRAG_IPV6");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV6_TCP == (1ULL << 10), "RTE_ETH_RSS_NONFRAG_IPV6_TCP");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV6_UDP == (1ULL << 11), "RTE_ETH_RSS_NONFRAG_IPV6_UDP");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV6_OTHER == (1ULL << 13), "RTE_ETH_RSS_NONFRAG_IPV6_OTHER");
_Static_assert(RTE_ETH_RSS_L3_SRC_ONLY == (1ULL << 63), "RTE_ETH_RSS_L3_SRC_ONLY");
_Static_assert(RTE_MBUF_F_RX_L4_CKSUM_MASK == ((1ULL << 3) | (1ULL << 8)), "RTE_MBUF_F_RX_L4_CKSUM_MASK");
_Static_assert(RTE_MBUF_F_RX_L4_CKSUM_GOOD == (1ULL << 8), "RTE_MBUF_F_RX_L4_CKSUM_GOOD");
_Static_assert(RTE_MBUF_F_RX_IP_CKSUM_MASK == ((1ULL << 4) | (1ULL << 7)), "RTE_MBUF_F_RX_IP_CKSUM_MASK");
_Static_assert(RTE_MBUF_F_RX_IP_CKSUM_GOOD == (1ULL << 7), "RTE_MBUF_F_RX_IP_CKSUM_GOOD");
_Static_assert(RTE_ETH_RX_OFFLOAD_IPV4_CKSUM == (1ULL << 1), "RTE_ETH_RX_OFFLOAD_IPV4_CKSUM");
_Static_assert(RTE_ETH_RX_OFFLOAD_UDP_CKSUM == (1ULL << 2), "RTE_ETH_RX_OFFLOAD_UDP_CKSUM");
_Static_assert(RTE_ETH_RX_OFFLOAD_TCP_CKSUM == (1ULL << 3), "RTE_ETH_RX_OFFLOAD_TCP_CKSUM");
_Static_assert(RTE_ETH_LINK_UP == 1, "RTE_ETH_LINK_UP");
