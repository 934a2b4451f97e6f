using System.Globalization;

namespace NbdFast.Interop.Tests.CrashConsistency;

/// <summary>One write the client issued. Sequences are line numbers in the writer's log (its own view of time).</summary>
/// <param name="AckSequence">When the success reply arrived; <see cref="WriteLog.Never"/> if it never did (failed or cut off).</param>
public sealed record LoggedWrite(int Id, long Offset, int Length, bool Fua, ulong Key, int IssueSequence, int AckSequence)
{
    public bool Acknowledged => AckSequence != WriteLog.Never;

    public long End => Offset + Length;

    /// <summary>The byte this write puts at disk offset <paramref name="position"/> (see crash_writer.py).</summary>
    public byte ByteAt(long position) => PatternByte(Key, position);

    /// <summary>Byte position%8 (little-endian) of (position/8) XOR key: every byte names its write and its place.</summary>
    public static byte PatternByte(ulong key, long position) =>
        (byte)((((ulong)position >> 3) ^ key) >> (int)((position & 7) << 3));
}

/// <summary>One FLUSH the client issued.</summary>
public sealed record LoggedFlush(int Id, int IssueSequence, int AckSequence)
{
    public bool Acknowledged => AckSequence != WriteLog.Never;
}

/// <summary>
/// The event log crash_writer.py prints (W/A/E/F/FA/FE/END lines; "CONNECTED" and anything before it is
/// ignored). Parsing is strict: a malformed or inconsistent log is a test failure, not something to guess at.
/// </summary>
public sealed class WriteLog
{
    /// <summary>The acknowledgement sequence of a command that was never acknowledged.</summary>
    public const int Never = int.MaxValue;

    private WriteLog(List<LoggedWrite> writes, List<LoggedFlush> flushes, string endReason)
    {
        Writes = writes;
        Flushes = flushes;
        EndReason = endReason;
    }

    public IReadOnlyList<LoggedWrite> Writes { get; }

    public IReadOnlyList<LoggedFlush> Flushes { get; }

    /// <summary>The writer's reason for stopping (the END line).</summary>
    public string EndReason { get; }

    /// <summary>
    /// The issue sequence of the last acknowledged FLUSH, or -1: every write acknowledged before it was
    /// covered by a completed flush.
    /// </summary>
    public int LastAcknowledgedFlushIssue =>
        Flushes.Where(f => f.Acknowledged).Select(f => f.IssueSequence).DefaultIfEmpty(-1).Max();

    public static WriteLog Parse(string text)
    {
        var writes = new Dictionary<int, LoggedWrite>();
        var flushes = new Dictionary<int, LoggedFlush>();
        string? end = null;
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int start = Array.FindIndex(lines, l => l.StartsWith("CONNECTED", StringComparison.Ordinal)) + 1;
        for (int sequence = start; sequence < lines.Length; sequence++)
        {
            string line = lines[sequence];
            if (end is not null)
            {
                throw new FormatException($"line {sequence + 1} follows END: '{line}'");
            }
            string[] f = line.Split(' ');
            switch (f[0])
            {
                case "W" when f.Length == 6:
                    int id = Int(f[1]);
                    writes.Add(id, new LoggedWrite(id, long.Parse(f[2], CultureInfo.InvariantCulture), Int(f[3]), f[4] == "1",
                        ulong.Parse(f[5], CultureInfo.InvariantCulture), sequence, Never));
                    break;
                case "A" when f.Length == 2:
                    LoggedWrite acked = writes[Int(f[1])];
                    Require(!acked.Acknowledged, sequence, line);
                    writes[acked.Id] = acked with { AckSequence = sequence };
                    break;
                case "E" when f.Length == 3:
                    Require(!writes[Int(f[1])].Acknowledged, sequence, line);
                    break;
                case "F" when f.Length == 2:
                    int flushId = Int(f[1]);
                    flushes.Add(flushId, new LoggedFlush(flushId, sequence, Never));
                    break;
                case "FA" when f.Length == 2:
                    LoggedFlush flushed = flushes[Int(f[1])];
                    Require(!flushed.Acknowledged, sequence, line);
                    flushes[flushed.Id] = flushed with { AckSequence = sequence };
                    break;
                case "FE" when f.Length == 3:
                    Require(!flushes[Int(f[1])].Acknowledged, sequence, line);
                    break;
                case "END":
                    end = line.Length > 4 ? line[4..] : "";
                    break;
                default:
                    throw new FormatException($"line {sequence + 1} is not a log event: '{line}'");
            }
        }
        if (end is null)
        {
            throw new FormatException("the log has no END line (the writer did not finish)");
        }
        return new WriteLog([.. writes.Values.OrderBy(w => w.IssueSequence)], [.. flushes.Values.OrderBy(f => f.IssueSequence)], end);
    }

    private static int Int(string text) => int.Parse(text, CultureInfo.InvariantCulture);

    private static void Require(bool condition, int sequence, string line)
    {
        if (!condition)
        {
            throw new FormatException($"line {sequence + 1} completes a command twice: '{line}'");
        }
    }
}
