using System.Globalization;

namespace NbdFast.Interop.Tests.Support;

/// <summary>What /proc says about a process right now: open file descriptors and resident memory.</summary>
public readonly record struct ProcessUsage(int OpenFds, long RssBytes)
{
    public override string ToString() => $"{OpenFds} fds, RSS {RssBytes / (1024.0 * 1024):F1} MiB";
}

/// <summary>Reads /proc/PID/fd and /proc/PID/status (VmRSS) of another process.</summary>
public static class ProcessProbe
{
    public static ProcessUsage Measure(int pid) => new(OpenFds(pid), RssBytes(pid));

    public static int OpenFds(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Length;

    public static long RssBytes(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                // "VmRSS:	   12345 kB"
                string kib = line["VmRSS:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
                return long.Parse(kib, CultureInfo.InvariantCulture) * 1024;
            }
        }
        throw new InvalidDataException($"/proc/{pid}/status has no VmRSS line");
    }

    /// <summary>
    /// Polls until <paramref name="settled"/> holds for the current usage or <paramref name="timeout"/> passes;
    /// returns the last measurement and whether it settled. Resources are freed asynchronously (a close is
    /// noticed on the next completion, the GC runs when it likes), so a single look would be flaky.
    /// </summary>
    public static async Task<(ProcessUsage Usage, bool Settled)> WaitUntilAsync(int pid, Func<ProcessUsage, bool> settled, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            ProcessUsage usage = Measure(pid);
            if (settled(usage))
            {
                return (usage, true);
            }
            if (DateTime.UtcNow >= deadline)
            {
                return (usage, false);
            }
            await Task.Delay(100).ConfigureAwait(false);
        }
    }
}
