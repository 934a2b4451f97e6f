using System.Runtime.InteropServices;

namespace NbdFast.IO.Posix;

/// <summary>The calling thread's major page faults: those that had to wait for a page to be read from the disk.</summary>
internal static unsafe partial class ThreadFaults
{
    private const int RusageThread = 1;
    private const int MajorFaultIndex = 9;   // struct rusage: two timevals (4 longs), then maxrss, ..., minflt (8), majflt (9)
    private const int RusageLongs = 18;

    /// <summary>getrusage(RUSAGE_THREAD).ru_majflt; -1 when the kernel refuses (the caller then never trusts).</summary>
    public static long Major()
    {
        long* usage = stackalloc long[RusageLongs];
        return GetRusage(RusageThread, usage) == 0 ? usage[MajorFaultIndex] : -1;
    }

    [LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetRusage(int who, long* usage);
}
