using static NbdFast.IO.Uring.IoUringNative;

namespace NbdFast.IO.Uring;

/// <summary>Creating a ring: a ladder of setup flags, peeled one rung at a time when the kernel says EINVAL.</summary>
internal sealed unsafe partial class Ring
{
    /// <summary>Best first: one issuer with deferred task work (no IPIs, completions batched at enter).</summary>
    private static readonly uint[] s_flagLadder =
    [
        SetupSingleIssuer | SetupDeferTaskrun | SetupCoopTaskrun | SetupSubmitAll | SetupCqSize | SetupClamp,
        SetupSingleIssuer | SetupCoopTaskrun | SetupSubmitAll | SetupCqSize | SetupClamp,
        SetupCoopTaskrun | SetupSubmitAll | SetupCqSize | SetupClamp,
        SetupCqSize | SetupClamp,
        0,
    ];

    /// <summary>
    /// Test hook: when the environment variable NBDFAST_URING_SETUP_ERRNO holds a positive errno (e.g. 1, EPERM,
    /// what a seccomp filter or kernel.io_uring_disabled=2 gives), every io_uring_setup "fails" with it, so the
    /// io_uring-unavailable paths (the CLI's fallback to sockets with --io auto, exit 2 with --io uring) can be
    /// tested on a kernel that has io_uring. Read once per process; unset or not a positive number: no effect.
    /// </summary>
    private static readonly int s_simulatedSetupErrno =
        int.TryParse(Environment.GetEnvironmentVariable("NBDFAST_URING_SETUP_ERRNO"), System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out int simulated) && simulated > 0 ? simulated : 0;

    /// <summary>Creates a ring on the calling thread (which becomes its only issuer). Returns null and the errno when io_uring is unusable.</summary>
    public static Ring? TryCreate(uint entries, uint completionEntries, out int errno)
    {
        errno = s_simulatedSetupErrno;
        if (errno != 0)
        {
            return null;
        }
        foreach (uint flags in s_flagLadder)
        {
            Params p = default;
            p.Flags = flags;
            p.CqEntries = completionEntries;
            int fd = Setup(entries, &p);
            if (fd >= 0)
            {
                try
                {
                    return new Ring(fd, p);
                }
                catch (IOException)
                {
                    Close(fd);
                    errno = 12; // ENOMEM: the rings could not be mapped
                    return null;
                }
            }
            errno = -fd;
            if (errno != 22) // only EINVAL means "try fewer features"; EPERM/ENOSYS/ENOMEM are final
            {
                return null;
            }
        }
        return null;
    }

    /// <summary>Opcodes the kernel supports, from IORING_REGISTER_PROBE (empty when probing fails).</summary>
    public bool[] ProbeOpcodes()
    {
        const int slots = 256;
        int size = sizeof(ProbeHeader) + slots * sizeof(ProbeOp);
        byte* buffer = stackalloc byte[size];
        new Span<byte>(buffer, size).Clear();
        var supported = new bool[slots];
        if (Register(_fd, RegisterProbe, buffer, slots) < 0)
        {
            return supported;
        }
        var header = (ProbeHeader*)buffer;
        var ops = (ProbeOp*)(buffer + sizeof(ProbeHeader));
        for (int i = 0; i < header->OpsLength && i < slots; i++)
        {
            supported[ops[i].Op] = (ops[i].Flags & ProbeOpSupported) != 0;
        }
        return supported;
    }

    /// <summary>
    /// Registers an empty (sparse) table of <paramref name="count"/> fixed files (Linux 5.19); false when the
    /// kernel or RLIMIT_NOFILE refuses, and descriptors are then used as they are.
    /// </summary>
    public bool RegisterSparseFiles(uint count)
    {
        var table = new RsrcRegister { Count = count, Flags = RsrcRegisterSparse };
        return Register(_fd, RegisterFiles2, &table, (uint)sizeof(RsrcRegister)) == 0;
    }

    /// <summary>Puts <paramref name="fd"/> (-1: nothing) in fixed-file slot <paramref name="slot"/>; true when the kernel took it.</summary>
    public bool SetFixedFile(int slot, int fd)
    {
        var update = new RsrcUpdate2 { Offset = (uint)slot, Data = (ulong)&fd, Count = 1 };
        return Register(_fd, RegisterFilesUpdate2, &update, (uint)sizeof(RsrcUpdate2)) == 1;
    }

    /// <summary>Registers fixed buffers; returns 0 or -errno (ENOMEM when over the memlock budget).</summary>
    public int RegisterBuffers(IoVec* buffers, uint count) => Register(_fd, IoUringNative.RegisterBuffers, buffers, count);
}
