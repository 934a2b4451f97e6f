using Microsoft.Extensions.Logging;

namespace NbdFast.Cli.Logging;

/// <summary>
/// Maps -q / -v / -vv / -vvv to a minimum log level: warnings only, the default (start, stop, reload, limits),
/// plus one line per connection, plus handshake detail.
/// </summary>
internal static class Verbosity
{
    /// <summary>
    /// Takes the -v/-q flags out of <paramref name="args"/> (so -vv needs no special parser support) and returns
    /// the rest together with the level they ask for.
    /// </summary>
    public static (string[] Arguments, LogLevel Level) Extract(string[] args)
    {
        int verbose = 0;
        bool quiet = false;
        var rest = new List<string>(args.Length);
        bool afterDoubleDash = false;
        foreach (string arg in args)
        {
            if (!afterDoubleDash && arg is "--verbose")
            {
                verbose++;
            }
            else if (!afterDoubleDash && arg is "--quiet" or "-q")
            {
                quiet = true;
            }
            else if (!afterDoubleDash && arg.Length >= 2 && arg[0] == '-' && arg.AsSpan(1).IndexOfAnyExcept('v') < 0)
            {
                verbose += arg.Length - 1;
            }
            else
            {
                afterDoubleDash |= arg == "--";
                rest.Add(arg);
            }
        }
        LogLevel level = quiet ? LogLevel.Warning : verbose switch
        {
            0 => LogLevel.Information,
            1 => LogLevel.Debug,
            _ => LogLevel.Trace,
        };
        return ([.. rest], level);
    }
}
