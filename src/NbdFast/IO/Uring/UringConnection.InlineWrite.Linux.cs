using System.Diagnostics;
using NbdFast.IO.Posix;
using NbdFast.Protocol;

namespace NbdFast.IO.Uring;

/// <summary>
/// Small page-cache writes run as a plain pwrite on the reactor thread instead of going to io_uring. On ext4
/// (and any filesystem without non-blocking buffered writes) io_uring hands every such write to a worker
/// thread, and that hand-off costs more than the write: measured 4k QD32 random writes to a page-cached file
/// (fio nbd engine, unix socket, 6 interleaved runs, medians): 65.5k IOPS at 15.4 µs server CPU per I/O on
/// the worker, 96.7k at 9.6 µs inline (nbdkit's file plugin: 73.9k at 13.4 µs).
/// A buffered write can still block: on dirty-page throttling, on a filesystem that stalls, when memory is
/// short. So a write that takes longer than <see cref="SlowInlineWrite"/> sends this connection's writes back
/// to the worker threads for a pause: <see cref="FirstInlinePause"/>, doubled for each slow write that follows
/// within <see cref="MaxInlinePause"/> of the last, up to that: under a lasting stall one slow write at most
/// per second holds the reactor. The first pause is short because on the dev machine (ext4 on a shared VM) 4 KiB
/// pwrites stall for 10-25 ms in bursts during which the writing thread neither sleeps nor is preempted
/// (getrusage counts no context switch), so a worker would stall just the same. With a fixed 1 s pause, 1 in 8
/// two-job 4k random-write runs spent a second on the workers (2-3x the CPU per write there) and ended at
/// 45-51k IOPS and 15-16 µs per write against 110-135k and 6-8 µs.
/// The clock is read around each run of inline writes (all those one pass over the receive buffer starts),
/// not around each write: two reads per batch instead of three per write, which were 1.5% of the server's CPU
/// in two-job 4k random writes. A batch that held the reactor that long counts as one slow write.
/// Writes with FUA (they wait for the disk) always go to io_uring. So do large writes over a unix socket: there
/// the client can have no more than its send buffer (208 KiB by default) on its way while the reactor copies,
/// so the copy is better overlapped with the next receive on a worker (1M sequential writes at QD8, inline: 0.87x
/// the IOPS). A TCP receive buffer grows to megabytes and holds the client's next payloads meanwhile, so over
/// TCP writes up to <see cref="MaxInlineWriteTcp"/> run inline: 1.31x the IOPS at 0.84x the CPU per I/O (6
/// interleaved pairs), and 1.28x nbdkit's file plugin. NBDFAST_INLINE_WRITES=0 turns all this off for comparison.
/// Inline writes (and memory writes) whose payload already arrived with its header are written straight
/// from the receive buffer.
/// </summary>
internal sealed unsafe partial class UringConnection
{
    internal const uint MaxInlineWrite = 64 * 1024;

    // Capped so one write holds the reactor (and the other connections on it) for about a millisecond at most.
    internal const uint MaxInlineWriteTcp = 2 * 1024 * 1024;

    internal static readonly bool InlineWrites = Environment.GetEnvironmentVariable("NBDFAST_INLINE_WRITES") != "0";

    // Internal and settable so tests can make every write count as slow.
    // 10 ms: above what scheduling alone adds on a small machine, below the stalls the pause is for (dirty
    // throttling sleeps tens of ms and more). At 1 ms, two connections writing one file on 2 vCPUs sent writes
    // to the workers whenever a pwrite waited for the inode lock while its holder was preempted: two-job 4k
    // randwrite ran at 98k and 118k IOPS against 128k and 146k at 10 ms (bench/RESULTS-pwrite-floor.md).
    internal static long SlowInlineWrite = Stopwatch.Frequency / 100;
    internal static readonly long FirstInlinePause = Stopwatch.Frequency / 20;  // 50 ms
    internal static readonly long MaxInlinePause = Stopwatch.Frequency;         // 1 s

    private long _inlinePause;            // the last pause taken
    private long _lastSlowInlineWrite;

    private long _inlineWritesResumeAt;   // 0: no pause
    private long _inlineBatchStart;       // 0: no inline write since the last EndInlineBatch

    private bool InlineWriteAllowed(in NbdRequest request) =>
        _inlineWriteCandidate && request.Length <= _maxInlineWrite && (request.Flags & NbdCommandFlags.Fua) == 0 &&
        (_inlineWritesResumeAt == 0 || PauseIsOver());

    private bool PauseIsOver()
    {
        if (Stopwatch.GetTimestamp() < _inlineWritesResumeAt)
        {
            return false;
        }
        _inlineWritesResumeAt = 0;
        return true;
    }

    /// <summary>Called when a pass over the receive buffer is done: pauses inline writes if the batch was slow.</summary>
    private void EndInlineBatch()
    {
        if (_inlineBatchStart == 0)
        {
            return;
        }
        long end = Stopwatch.GetTimestamp();
        if (end - _inlineBatchStart > SlowInlineWrite)
        {
            bool stallGoesOn = _lastSlowInlineWrite != 0 && end - _lastSlowInlineWrite <= _inlinePause + MaxInlinePause;
            _inlinePause = stallGoesOn ? Math.Min(_inlinePause * 2, MaxInlinePause) : FirstInlinePause;
            _lastSlowInlineWrite = end;
            _inlineWritesResumeAt = end + _inlinePause;
        }
        _inlineBatchStart = 0;
    }

    private bool TryWriteInline(UringSlot slot)
    {
        if (!InlineWriteAllowed(slot.Request))
        {
            return false;
        }
        WriteInline(slot, slot.Data.Pointer);
        return true;
    }

    /// <summary>
    /// A WRITE whose whole payload is already in the receive buffer, for a device that takes it synchronously
    /// (memory, or an inline pwrite), is written from there: no buffer rented, and one copy of the payload
    /// fewer. Called in place of renting the payload buffer; false leaves the request to the usual path.
    /// </summary>
    private bool TryWriteFromReceiveBuffer(UringSlot slot)
    {
        NbdRequest request = slot.Request;
        int length = (int)request.Length;
        if (request.Command != NbdCommand.Write || _receiveEnd - _receiveStart < length)
        {
            return false;
        }
        bool toMemory = _memory is not null;
        if (!toMemory && !(_deviceFd >= 0 && InlineWriteAllowed(request)))
        {
            return false;
        }
        byte* payload = _receive + _receiveStart;
        _receiveStart += length;
        slot.Started = _context.Metrics.RequestStarted(slot.Received);
        if (toMemory)
        {
            WriteToMemory(slot, payload);
        }
        else
        {
            WriteInline(slot, payload);
        }
        return true;
    }

    private void WriteInline(UringSlot slot, byte* payload)
    {
        NbdRequest request = slot.Request;
        if (_inlineBatchStart == 0)
        {
            _inlineBatchStart = Stopwatch.GetTimestamp();
        }
        int length = (int)request.Length;
        int done = 0;
        int result = 0;
        while (done < length)
        {
            int written = PosixFile.PwriteOrErrno(_deviceFd, payload + done, length - done, (long)request.Offset + done);
            if (written <= 0)
            {
                // A regular file never takes zero bytes of a non-empty write; treat it as an I/O error.
                result = written < 0 ? written : -EIo;
                break;
            }
            done += written;
        }
        OnDeviceCompletion(OpKind.DeviceWrite, slot, result < 0 ? result : done);
    }

    private const int EIo = 5;
}
