/* The DPDK API Moat uses (bindgen's input, and the header the generated
 * static-inline wrappers and shim.c are compiled against). */
#ifndef MOAT_DPDK_BINDINGS_H
#define MOAT_DPDK_BINDINGS_H

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_thread.h>

/* rte_errno is a per-lcore thread-local macro: Rust cannot name it. */
int moat_rte_errno(void);

/* LCORE_ID_ANY is UINT32_MAX through a macro bindgen cannot evaluate. */
unsigned int moat_lcore_id_any(void);

#endif
