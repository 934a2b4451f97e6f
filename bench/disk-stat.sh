# Sourced by bench/compare.sh and bench/direct-bound.sh (after WORK is set): the block device under the
# scratch dir that holds the backing file (/sys/dev/block/MAJ:MIN/stat), read around a run to tell how long
# the disk took per request and how many requests it held on average. DISK_STAT is empty when the scratch dir
# is on no block device (tmpfs, overlay); the figures are then "null".
DISK_STAT=/sys/dev/block/$(stat -c '%Hd:%Ld' "$WORK")/stat
[ -r "$DISK_STAT" ] || DISK_STAT=""
disk_snapshot() { if [ -n "$DISK_STAT" ]; then echo "$(date +%s%N) $(<"$DISK_STAT")"; fi; }

# disk_share BEFORE AFTER (disk_snapshot lines): "AWAIT_US DEPTH", the mean time a request spent in the disk
# (queue and service, as iostat's await) and the mean number of requests in it (Little: IOPS = DEPTH / AWAIT);
# "null null" when unknown.
disk_share() {
    awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); split(b, y, " ")
        ios = y[2] - x[2] + y[6] - x[6]; ms = (y[1] - x[1]) / 1e6
        if (n < 12 || ios <= 0 || ms <= 0) { print "null null"; exit }
        printf "%.0f %.1f\n", 1000 * (y[5] - x[5] + y[9] - x[9]) / ios, (y[12] - x[12]) / ms }'
}
