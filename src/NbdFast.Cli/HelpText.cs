using System.CommandLine;
using System.Reflection;
using System.Text;

namespace NbdFast.Cli;

/// <summary>
/// <c>nbdfast --help</c>: a manual page (NAME, SYNOPSIS, OPTIONS, …, EXAMPLES). The OPTIONS section is built from
/// the parser's own option list, so it cannot drift from what the parser accepts.
/// </summary>
internal static class HelpText
{
    private const int Width = 80;
    private const int DescriptionIndent = 12;

    public static string Version =>
        typeof(HelpText).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "unknown";

    public static string Render(CommandLine commandLine)
    {
        var text = new StringBuilder();
        text.Append($$"""
            NAME
                nbdfast - serve disk images and block devices over the Network Block Device protocol

            SYNOPSIS
                nbdfast [OPTIONS] FILE
                nbdfast [OPTIONS] --memory SIZE
                nbdfast [OPTIONS] --export NAME=PATH[,OPTIONS] [--export ...]
                nbdfast [OPTIONS] --config FILE.json
                nbdfast --help | --version

            DESCRIPTION
                nbdfast is an NBD server (fixed-newstyle handshake, structured replies, extended headers,
                block status, TLS) for storage nodes and appliances. It serves one or many exports over TCP
                (IPv4 and IPv6) and unix sockets, runs in the foreground, and takes systemd's sockets when
                socket-activated. On Linux it serves requests from io_uring reactor threads, with replies sent
                straight from the buffers the device read into; elsewhere, or with --io sockets, it uses
                ordinary sockets. Exports are read-only unless -w / ,rw says otherwise.

            OPTIONS

            """);
        foreach ((string title, Option[] options) in commandLine.Groups)
        {
            text.Append("  ").Append(title).Append('\n');
            foreach (Option option in options)
            {
                AppendOption(text, option);
            }
            text.Append('\n');
        }
        text.Append("""
              Other
                -h, --help  Show this manual.
                --version   Print the version.

            EXPORT SPECIFICATION (--export)
                NAME=PATH or NAME=memory:SIZE, followed by comma-separated options:
                ro / rw          read-only (default) or read-write
                direct           open PATH with O_DIRECT
                snapshot         copy-on-write overlay, discarded when the last client leaves
                tls-only         with --tls=on: hidden and refused until the client starts TLS
                offset=N,size=N  serve a sub-range of PATH (a partition)
                max-connections=N  most clients on this export at once
                desc=TEXT        description (must come last; may contain commas)

            CONFIG FILE (--config)
                JSON with an "exports" array; each export has "name" and either "path" or "memory", and may
                have "writable", "direct", "snapshot", "tlsOnly", "description", "offset", "size" (numbers or
                strings such as "512M") and "maxConnections". Unknown fields are errors. SIGHUP re-reads the
                file: new exports appear at once; removed or changed ones refuse new clients and are closed
                when their last client leaves. A file with a mistake is reported and the old exports stay.

                { "exports": [
                    { "name": "disk0", "path": "/srv/disk0.img", "writable": true, "description": "data" },
                    { "name": "boot", "path": "/dev/sdb", "offset": "1M", "size": "512M", "snapshot": true },
                    { "name": "scratch", "memory": "1G", "writable": true, "maxConnections": 4 } ] }

            SIGNALS
                SIGINT, SIGTERM  Stop accepting; requests that arrive get ESHUTDOWN, those in flight are finished
                                 and answered, clients still in the handshake get NBD_REP_ERR_SHUTDOWN, writable
                                 exports are flushed; exit 0 (open connections are closed after
                                 --shutdown-timeout). A second signal exits at once.
                SIGHUP           Re-read --config.

            SYSTEMD
                Runs in the foreground and logs to standard error, as a Type=simple service expects. With socket
                activation (LISTEN_FDS/LISTEN_PID) it serves the sockets systemd passes, TCP and unix alike.

            EXIT STATUS
                0 after a clean shutdown; 1 after a second signal; 2 for a command-line or start-up mistake
                (reported as one line).

            EXAMPLES
                nbdfast disk.img
                    Serve disk.img read-only as the default export on port 10809.
                nbdfast --writable --memory 1G -b 127.0.0.1
                    A 1 GiB RAM disk on the loopback address.
                nbdfast --snapshot -U /run/nbd.sock disk.img
                    Clients may write, disk.img never changes; listen on a unix socket.
                nbdfast --export boot=/dev/sda,offset=1M,size=512M --export data=/srv/data.img,rw,direct
                    Two exports, one of them a partition of /dev/sda.
                nbdfast --config /etc/nbdfast.json --allow 10.0.0.0/8 --metrics 127.0.0.1:9109 -v
                    Exports from a file, clients from 10/8 only, Prometheus metrics, connection log.
                nbdfast --tls-certificates /etc/pki/nbdfast --tls-verify-peer disk.img
                    TLS required, client certificates checked.
                Then, for example: nbdinfo nbd://HOST/NAME, qemu-img info nbd://HOST:10809/NAME,
                nbdcopy nbd://HOST/NAME out.img, or fio --ioengine=nbd --uri=nbd://HOST/NAME.

            SEE ALSO
                nbdkit(1), qemu-nbd(8), nbd-server(1), nbdinfo(1), nbdcopy(1), and the NBD protocol:
                https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md

            """);
        text.Append($"nbdfast {Version}\n");
        return text.ToString();
    }

    private static void AppendOption(StringBuilder text, Option option)
    {
        var names = new List<string>(option.Aliases.Order(StringComparer.Ordinal)) { option.Name };
        names.Sort((a, b) => a.Length.CompareTo(b.Length));
        string head = string.Join(", ", names);
        if (option.HelpName is string helpName)
        {
            head += " " + helpName;
        }
        text.Append("    ").Append(head).Append('\n');
        AppendWrapped(text, option.Description ?? string.Empty, DescriptionIndent);
    }

    private static void AppendWrapped(StringBuilder text, string paragraph, int indent)
    {
        int column = 0;
        foreach (string word in paragraph.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (column > 0 && indent + column + 1 + word.Length > Width)
            {
                text.Append('\n');
                column = 0;
            }
            if (column == 0)
            {
                text.Append(' ', indent);
            }
            else
            {
                text.Append(' ');
                column++;
            }
            text.Append(word);
            column += word.Length;
        }
        text.Append('\n');
    }
}
