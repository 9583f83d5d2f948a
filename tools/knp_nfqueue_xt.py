#!/usr/bin/env python3
"""Make kube-network-policies' packet queueing work on kernels without nft's `queue` expression.

    knp_nfqueue_xt.py PATH/TO/pkg/networkpolicy/controller.go

kube-network-policies v0.8.0 hands the packets a NetworkPolicy selects to its own userspace with
`expr.Queue`, which the kernel implements in nft_queue (CONFIG_NFT_QUEUE). Where that is missing the
whole rule set is rejected ("netlink receive: no such file or directory") and no policy is enforced.
The xtables NFQUEUE target, used from nft through nft_compat, queues the same packets to the same
queue with the same fail-open flag, and is built into such kernels. This rewrites both uses in place,
and refuses (exit 1) a source that does not have exactly the two blocks it knows.
"""

import sys

OLD = """	queue := &expr.Queue{Num: uint16(c.config.QueueID)}
	if c.config.FailOpen {
		queue.Flag = expr.QueueFlagBypass
	}
"""
NEW = """	queue := nfqueueTarget(uint16(c.config.QueueID), c.config.FailOpen)
"""
HELPER = """
// nfqueueTarget is iptables' "-j NFQUEUE --queue-num num [--queue-bypass]" as an nft_compat target:
// revision 3 takes struct xt_NFQ_info_v3 {__u16 queuenum, queues_total, flags}, padded to 8 bytes.
func nfqueueTarget(num uint16, bypass bool) expr.Any {
	info := make([]byte, 8)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	if bypass {
		binary.NativeEndian.PutUint16(info[4:], 1) // NFQ_FLAG_BYPASS
	}
	payload := xt.Unknown(info)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &payload}
}
"""
IMPORT = "import (\n"


def main(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    if "func nfqueueTarget(" in source:
        return 0
    found = source.count(OLD)
    if found != 2 or source.count(IMPORT) != 1:
        print(f"{path}: expected 2 expr.Queue blocks and one import block, found {found}: "
              "not the kube-network-policies version this patch was written for", file=sys.stderr)
        return 1
    source = source.replace(OLD, NEW).replace(
        IMPORT, IMPORT + '\t"encoding/binary"\n\n\t"github.com/google/nftables/xt"\n', 1)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(source + HELPER)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
